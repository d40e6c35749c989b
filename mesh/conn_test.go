package mesh

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

func TestRestartReconnectsFromRoster(t *testing.T) {
	acfg := testConfig(t, "alice")
	a := startNode(t, acfg)
	bcfg := joinConfig(t, a, "bob")
	b := startNode(t, bcfg)
	fullMesh(t, a, b)

	// alice restarts on a new port: she redials bob from peers.json.
	a.Close()
	a2 := startNode(t, acfg)
	if a2.Created() || !a2.IsAdmin() {
		t.Fatalf("restarted admin: Created %v IsAdmin %v, want false true", a2.Created(), a2.IsAdmin())
	}
	fullMesh(t, a2, b)

	// bob restarts without --join and without the invite: he redials alice.
	b.Close()
	err := testutil.WaitFor(5*time.Second, func() error {
		if p := a2.Peers(); len(p) != 1 || p[0].State != Offline {
			return fmt.Errorf("alice's peers %+v, want bob offline", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bcfg.Join, bcfg.Invite = nil, ""
	b2 := startNode(t, bcfg)
	fullMesh(t, a2, b2)
	if b2.ID() != b.ID() {
		t.Fatalf("bob's ID changed across restart")
	}
}

// TestDuplicateDials: many simultaneous dials in both directions end with
// exactly one connection per pair, the same one on both ends.
func TestDuplicateDials(t *testing.T) {
	admin := newOffline(t, testConfig(t, "admin"))
	x := startOffline(t, issueFor(t, admin, "x"))
	y := startOffline(t, issueFor(t, admin, "y"))
	var wg sync.WaitGroup
	for i := range 8 {
		from, to := x, y
		if i%2 == 1 {
			from, to = y, x
		}
		wg.Go(func() { from.Connect(t.Context(), to.Addr().String()) })
	}
	wg.Wait()
	err := testutil.WaitFor(5*time.Second, func() error {
		px, py := livePeer(x, y.ID()), livePeer(y, x.ID())
		if px == nil || py == nil {
			return errors.New("not connected")
		}
		if px.tiebreak != py.tiebreak {
			return errors.New("the two ends kept different connections")
		}
		if open := countOpen(x) + countOpen(y); open != 0 {
			return fmt.Errorf("%d handshakes still pending", open)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The survivor is stable: it still carries data.
	if err := x.SendChat(t.Context(), y.ID(), Chat{Text: "still here"}); err != nil {
		t.Fatal(err)
	}
	if err := testutil.WaitFor(5*time.Second, func() error {
		if len(rec(y).chats()) != 1 {
			return errors.New("no chat")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	connects, disconnects := countEvents(y, x.ID())
	if connects != disconnects+1 {
		t.Fatalf("events: %d connected, %d disconnected; want one more connected", connects, disconnects)
	}
}

func startOffline(t *testing.T, n *Node) *Node {
	t.Helper()
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return n
}

func livePeer(n *Node, id PeerID) *peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peers[id]
}

func countOpen(n *Node) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.pending)
}

func countEvents(n *Node, id PeerID) (connects, disconnects int) {
	for _, e := range rec(n).snapshot() {
		switch e := e.(type) {
		case PeerConnected:
			if e.Peer.ID == id {
				connects++
			}
		case PeerDisconnected:
			if e.Peer.ID == id {
				disconnects++
			}
		}
	}
	return
}

// TestSlowlorisHandshake: a client that trickles bytes is closed at the
// handshake deadline, and its slot is freed.
func TestSlowlorisHandshake(t *testing.T) {
	cfg := testConfig(t, "alice")
	cfg.HandshakeTimeout = 300 * time.Millisecond
	a := startNode(t, cfg)
	c, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c)
		closed <- err
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("closed after %v, want about 300ms", d)
			}
			if err := testutil.WaitFor(2*time.Second, func() error {
				if countOpen(a) != 0 {
					return errors.New("pending slot not released")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return
		case <-tick.C:
			c.Write([]byte{0x16}) // one byte of a TLS record at a time
		case <-time.After(5 * time.Second):
			t.Fatal("slowloris connection still open after 5s")
		}
	}
}

// TestPreAuthLimitPerIP: a fifth idle connection from one IP is refused at once.
// TestPreAuthLimitPerIP: four connections from one address are in the
// handshake at once; the next ones wait for a slot, first come first
// served, up to MaxWaitingPerIP; one more is closed at once, and a waiter
// that gets no slot within HandshakeTimeout is closed too.
func TestPreAuthLimitPerIP(t *testing.T) {
	cfg := testConfig(t, "alice")
	cfg.MaxWaitingPerIP = 2
	a := startNode(t, cfg)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", a.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var first []net.Conn
	for range 4 {
		first = append(first, dial())
	}
	waitSlots(t, a, 4, 0)
	dial()
	dial()
	waitSlots(t, a, 4, 2)
	closedAtOnce(t, dial(), 2*time.Second, "connection over the waiting room")
	first[0].Close() // its handshake fails: the oldest waiter takes the slot
	waitSlots(t, a, 4, 1)
	closedAtOnce(t, first[1], cfg.HandshakeTimeout+2*time.Second, "connection in the handshake past its deadline")
}

// waitSlots polls until a has pending connections in the handshake and
// waiting ones queued.
func waitSlots(t *testing.T, a *Node, pending, waiting int) {
	t.Helper()
	err := testutil.WaitFor(5*time.Second, func() error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if len(a.pending) != pending || len(a.queue) != waiting {
			return fmt.Errorf("%d pending, %d waiting; want %d, %d", len(a.pending), len(a.queue), pending, waiting)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// closedAtOnce fails unless the other side closes c within d.
func closedAtOnce(t *testing.T, c net.Conn, d time.Duration, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s: read = %v, want it closed", what, err)
	}
}

// fakeMember completes a member handshake with a as n, and returns the
// raw result without starting any loop: the test drives the connection.
func fakeMember(t *testing.T, n, a *Node) *handshakeResult {
	t.Helper()
	raw, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	hs, err := n.handshake(context.Background(), raw, true, a.ID())
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// TestNeverReadingPeer: a member that stops reading is dropped by the
// write deadline; the other members keep working meanwhile.
func TestNeverReadingPeer(t *testing.T) {
	cfg := testConfig(t, "alice")
	cfg.WriteTimeout = 300 * time.Millisecond
	cfg.MaxBytes = 1 << 20
	a := startNode(t, cfg)
	b := startNode(t, joinConfig(t, a, "bob"))
	fullMesh(t, a, b)
	z := issueFor(t, a, "zombie")
	fakeMember(t, z, a) // never reads
	if err := testutil.WaitFor(5*time.Second, func() error { return connectedTo(a, z.ID()) }); err != nil {
		t.Fatal(err)
	}
	sendErr := make(chan error, 1)
	go func() {
		chunk := make([]byte, 1<<20)
		for {
			if err := a.SendBulk(t.Context(), z.ID(), chunk); err != nil {
				sendErr <- err
				return
			}
		}
	}()
	for i := range 20 {
		if err := a.SendChat(t.Context(), b.ID(), Chat{Text: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-sendErr:
		if !errors.Is(err, ErrUnknownPeer) {
			t.Fatalf("SendBulk to the stuck peer = %v, want ErrUnknownPeer", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SendBulk to a peer that never reads is still blocked after 10s")
	}
	if err := testutil.WaitFor(5*time.Second, func() error {
		if connectedTo(a, z.ID()) == nil {
			return errors.New("still connected to the stuck peer")
		}
		if n := len(rec(b).chats()); n != 20 {
			return fmt.Errorf("bob has %d of 20 chats", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestProtocolErrors: frames a ready connection must not get close it.
func TestProtocolErrors(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	z := issueFor(t, a, "zed")
	tests := []struct {
		name  string
		frame []byte
	}{
		{"unknown type", encodeFrame(99, nil)},
		{"hello again", encodeFrame(frameHello, encodeHello(hello{Version: 1}))},
		{"join when ready", encodeFrame(frameJoin, nil)},
		{"over-long chat", append([]byte{byte(frameChat)}, 0xff, 0xff, 0xff, 0xff)},
		{"bad ping", encodeFrame(framePing, []byte{1})},
		{"bad peers", encodeFrame(framePeers, []byte{0xff})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The previous row's connection must be gone, or alice
			// refuses this one as a duplicate before reading the frame.
			if err := testutil.WaitFor(5*time.Second, func() error {
				if connectedTo(a, z.ID()) == nil {
					return errors.New("alice still holds the previous connection")
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			hs := fakeMember(t, z, a)
			hs.conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := hs.conn.Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			for {
				f, err := readFrame(hs.br, 4<<20, nil)
				if err != nil {
					t.Fatalf("connection ended with %v before BYE", err)
				}
				if f.Type == frameBye {
					if code, _ := decodeReason(f.Payload); code != reasonProtocol {
						t.Fatalf("BYE %v, want %v", code, reasonProtocol)
					}
					return
				}
			}
		})
	}
}

// TestIdlePeerDropped: a member that sends nothing (not even PING) is
// closed after DeadAfter.
func TestIdlePeerDropped(t *testing.T) {
	cfg := testConfig(t, "alice")
	cfg.DeadAfter = 300 * time.Millisecond
	a := startNode(t, cfg)
	z := issueFor(t, a, "quiet")
	hs := fakeMember(t, z, a)
	hs.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	for {
		if _, err := readFrame(hs.br, 4<<20, nil); err != nil {
			break // alice closed it
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("idle peer closed after %v, want about 300ms", d)
	}
}

// TestChatBeforeHello: a member that sends CHAT instead of HELLO is refused.
func TestChatBeforeHello(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	z := issueFor(t, a, "eager")
	raw, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(raw, z.clientTLS(a.ID()))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if f, err := readFrame(tc, 0, nil); err != nil || f.Type != frameHello {
		t.Fatalf("first frame = %v, %v; want HELLO", f.Type, err)
	}
	chat, _ := encodeChat(Chat{Text: "PEERS:1.2.3.4:22"})
	tc.Write(encodeFrame(frameChat, chat))
	if _, err := readFrame(tc, 0, nil); err == nil {
		t.Fatal("connection still open after CHAT before HELLO")
	}
	if connectedTo(a, z.ID()) == nil {
		t.Fatal("eager member registered")
	}
}

// TestChatFloodSlowedNotDropped: chat beyond ChatRate is delayed (the
// reader stops reading) but every message arrives, in order.
func TestChatFloodSlowedNotDropped(t *testing.T) {
	acfg := testConfig(t, "alice")
	a := startNode(t, acfg)
	bcfg := joinConfig(t, a, "bob")
	bcfg.ChatRate, bcfg.ChatBurst = 50, 50
	b := startNode(t, bcfg)
	fullMesh(t, a, b)
	start := time.Now()
	for i := range 100 {
		if err := a.SendChat(t.Context(), b.ID(), Chat{Seq: uint64(i), Text: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := testutil.WaitFor(10*time.Second, func() error {
		if n := len(rec(b).chats()); n != 100 {
			return fmt.Errorf("%d of 100 chats", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Fatalf("100 chats at 50/s took %v, want about 1s", d)
	}
	for i, s := range rec(b).chats() {
		if s != fmt.Sprint(i) {
			t.Fatalf("chat %d = %q: out of order", i, s)
		}
	}
}
