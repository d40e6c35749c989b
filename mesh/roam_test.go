package mesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// TestReplaces: a new connection from the session of the current one
// replaces it once the current one is replaceAfter old, whatever the
// tie-break says; two young ones (crossing dials) keep the tie-break.
func TestReplaces(t *testing.T) {
	low, high := PeerID{1}, PeerID{2}
	n := &Node{self: low, replaceAfter: replaceAfter}
	now := time.Now()
	// Initiator low (we dialed) beats initiator high (it dialed).
	ours := func(age time.Duration) *peer { return &peer{id: high, outbound: true, since: now.Add(-age)} }
	theirs := func(age time.Duration) *peer { return &peer{id: high, since: now.Add(-age)} }
	cases := []struct {
		name   string
		cur, p *peer
		want   bool
	}{
		{"young, tie-break keeps cur", ours(time.Second), theirs(0), false},
		{"young, tie-break takes p", theirs(time.Second), ours(0), true},
		{"just under replaceAfter", ours(replaceAfter - time.Millisecond), theirs(0), false},
		{"replaceAfter old", ours(replaceAfter), theirs(0), true},
		{"old, tie-break takes p anyway", theirs(time.Minute), ours(0), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := n.replaces(tc.cur, tc.p); got != tc.want {
				t.Errorf("replaces(cur %v old, p) = %v, want %v", now.Sub(tc.cur.since), got, tc.want)
			}
		})
	}
}

// TestRedialReplacesStaleConnection: hi loses its connection to lo
// without lo noticing (as when hi's address changes) and dials again from
// the same session; lo lets the new connection in at once and closes the
// old one. lo dialed the old one, so the setup tie-break alone (lower
// initiator wins) would refuse every redial of hi's.
func TestRedialReplacesStaleConnection(t *testing.T) {
	admin := newOffline(t, testConfig(t, "admin"))
	lo, hi := issueFor(t, admin, "x"), issueFor(t, admin, "y")
	if bytes.Compare(lo.self[:], hi.self[:]) > 0 {
		lo, hi = hi, lo
	}
	for _, n := range []*Node{lo, hi} {
		n.replaceAfter = 100 * time.Millisecond
		startOffline(t, n)
	}
	if err := lo.Connect(t.Context(), hi.Addr().String()); err != nil {
		t.Fatal(err)
	}
	fullMesh(t, lo, hi)
	stale := livePeer(lo, hi.ID())
	waitFor(t, 5*time.Second, func() error {
		if age := time.Since(stale.since); age <= lo.replaceAfter {
			return fmt.Errorf("connection %v old", age)
		}
		return nil
	})
	forget(t, hi, lo.ID()) // hi loses the connection; lo still holds it
	start := time.Now()
	hi.wake() // hi's dial loop redials lo, as after a lost connection
	waitFor(t, 2*time.Second, func() error {
		if !stale.isClosed() {
			return errors.New("lo still holds the stale connection")
		}
		if p := livePeer(lo, hi.ID()); p == nil || p == stale {
			return errors.New("lo has not taken the new connection")
		}
		return nil
	})
	fullMeshWithin(t, 2*time.Second, lo, hi)
	t.Logf("reconnected in %v", time.Since(start))
}

// TestRefusedRedialWaits: while the other end still refuses a young
// connection's replacement (the setup tie-break), the refused member
// redials once per RedialMin, not in a tight loop.
func TestRefusedRedialWaits(t *testing.T) {
	admin := newOffline(t, testConfig(t, "admin"))
	lo, hi := issueFor(t, admin, "x"), issueFor(t, admin, "y")
	if bytes.Compare(lo.self[:], hi.self[:]) > 0 {
		lo, hi = hi, lo
	}
	lo.replaceAfter = time.Hour // lo refuses every redial of hi's
	hi.cfg.RedialMin = 300 * time.Millisecond
	startOffline(t, lo)
	startOffline(t, hi)
	if err := lo.Connect(t.Context(), hi.Addr().String()); err != nil {
		t.Fatal(err)
	}
	fullMesh(t, lo, hi)
	before, _ := countEvents(hi, lo.ID())
	forget(t, hi, lo.ID()) // hi loses the connection; lo still holds it
	hi.wake()
	const window = time.Second
	time.Sleep(window) // counting what happens in a fixed time, not waiting for it
	after, _ := countEvents(hi, lo.ID())
	if got, most := after-before, int(window/hi.cfg.RedialMin)+1; got < 1 || got > most {
		t.Errorf("refused redials in %v = %d, want 1 to %d", window, got, most)
	}
}

// forget removes n's connection to id from its table without closing
// it, as if n had lost it while the other end did not notice. The
// connection is closed at cleanup: Close only closes those in the table.
func forget(t *testing.T, n *Node, id PeerID) {
	t.Helper()
	n.mu.Lock()
	p := n.peers[id]
	delete(n.peers, id)
	n.mu.Unlock()
	if p == nil {
		t.Fatalf("%s has no connection to %s", n.Name(), id.Short())
	}
	t.Cleanup(func() { p.close(errors.New("test ends")) })
}

// addrSource is an injectable Node.localIPs.
type addrSource struct {
	mu  sync.Mutex
	ips []netip.Addr
}

func (s *addrSource) set(ips ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ips = s.ips[:0]
	for _, ip := range ips {
		s.ips = append(s.ips, netip.MustParseAddr(ip))
	}
}

func (s *addrSource) get() (ipSet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := ipSet{}
	for _, ip := range s.ips {
		set[ip] = true
	}
	return set, nil
}

// TestAddressGoneReconnects: when the address x's connections are bound
// to vanishes, x closes them at once and is connected to every member
// again well within 15 s, without a restart.
func TestAddressGoneReconnects(t *testing.T) {
	admin := newOffline(t, testConfig(t, "admin"))
	src := &addrSource{}
	src.set("127.0.0.1", "::1")
	x := issueFor(t, admin, "x")
	x.localIPs = src.get
	startOffline(t, x)
	y := startOffline(t, issueFor(t, admin, "y"))
	z := startOffline(t, issueFor(t, admin, "z"))
	for _, to := range []*Node{y, z} {
		if err := x.Connect(t.Context(), to.Addr().String()); err != nil {
			t.Fatal(err)
		}
	}
	if err := y.Connect(t.Context(), z.Addr().String()); err != nil {
		t.Fatal(err)
	}
	fullMesh(t, x, y, z)
	old := []*peer{livePeer(x, y.ID()), livePeer(x, z.ID())}

	src.set("192.0.2.7", "::1") // the laptop moved: 127.0.0.1 is gone
	start := time.Now()
	x.addrsChanged()
	src.set("127.0.0.1", "192.0.2.7", "::1") // and the new network works
	for _, p := range old {
		if !p.isClosed() || !errors.Is(p.err, errAddrGone) {
			t.Errorf("connection to %s: closed %v with %v, want closed with %v", p.name, p.isClosed(), p.err, errAddrGone)
		}
	}
	waitFor(t, 10*time.Second, func() error {
		for _, p := range old {
			if q := livePeer(x, p.id); q == nil || q == p {
				return fmt.Errorf("x has no new connection to %s", p.name)
			}
		}
		return nil
	})
	fullMeshWithin(t, 5*time.Second, x, y, z)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("reconnected after %v, want within 15 s", d)
	}
	t.Logf("reconnected in %v", time.Since(start))
}

// gate is a Handler whose reader stops on the first chat until released,
// like a member whose connection died without a FIN.
type gate struct {
	recorder
	once    sync.Once
	release chan struct{}
}

func (g *gate) HandleEvent(e Event) {
	if _, ok := e.(ChatReceived); ok {
		<-g.release
	}
	g.recorder.HandleEvent(e)
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// TestProbeAfterChange: after an address change that leaves a
// connection's address in place, a connection that still answers is
// kept and one that is silent is closed after probeWait.
func TestProbeAfterChange(t *testing.T) {
	admin := newOffline(t, testConfig(t, "admin"))
	x := issueFor(t, admin, "x")
	x.probeWait = 300 * time.Millisecond
	startOffline(t, x)
	g := &gate{release: make(chan struct{})}
	y := issueFor(t, admin, "y")
	y.cfg.Handler = g // y's own next PING is PingInterval (10 s) after connecting, past this test
	startOffline(t, y)
	t.Cleanup(g.open) // before y.Close, which waits for the reader
	if err := x.Connect(t.Context(), y.Addr().String()); err != nil {
		t.Fatal(err)
	}
	fullMesh(t, x, y)
	p := livePeer(x, y.ID())

	x.addrsChanged() // y answers: kept
	waitFor(t, 5*time.Second, probeDone(x))
	if p.isClosed() {
		t.Fatalf("live connection closed by the probe: %v", p.err)
	}

	if err := x.SendChat(t.Context(), y.ID(), Chat{Text: "stops y's reader"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	x.addrsChanged() // y is silent: closed
	waitFor(t, 5*time.Second, probeDone(x))
	if !p.isClosed() || !errors.Is(p.err, errProbeFailed) {
		t.Fatalf("silent connection: closed %v with %v, want closed with %v", p.isClosed(), p.err, errProbeFailed)
	}
	t.Logf("silent connection closed after %v", time.Since(start))
}

func probeDone(n *Node) func() error {
	return func() error {
		if n.probing.Load() {
			return errors.New("probe running")
		}
		return nil
	}
}

// TestWatcherStopsOnClose: Close stops the address watcher (goleak in
// TestMain checks that nothing is left), also while a change is pending.
func TestWatcherStopsOnClose(t *testing.T) {
	n := startNode(t, testConfig(t, "solo"))
	n.mu.Lock()
	watching := n.watch != nil
	n.mu.Unlock()
	t.Logf("netlink watcher: %v", watching)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
}

func waitFor(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	if err := testutil.WaitFor(d, f); err != nil {
		t.Fatal(err)
	}
}

// blackhole accepts TCP connections and never answers, like an address
// whose SYN-ACK is lost on the old network; it counts them.
type blackhole struct {
	ln    net.Listener
	conns chan net.Conn
	done  chan struct{}
}

func newBlackhole(t *testing.T) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, conns: make(chan net.Conn, 64), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-b.done
		for len(b.conns) > 0 {
			(<-b.conns).Close()
		}
	})
	return b
}

// next returns the next connection accepted within d.
func (b *blackhole) next(t *testing.T, d time.Duration) net.Conn {
	t.Helper()
	select {
	case c := <-b.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(d):
		t.Fatalf("no connection within %v", d)
		return nil
	}
}

// TestChangeCancelsDials: a dial under way when the address set changes
// is cancelled and made again at once, instead of waiting out its
// handshake timeout on the old network.
func TestChangeCancelsDials(t *testing.T) {
	b := newBlackhole(t)
	x := issueFor(t, newOffline(t, testConfig(t, "admin")), "x")
	x.cfg.HandshakeTimeout = 10 * time.Second
	x.cfg.Join = []string{b.ln.Addr().String()} // a hint that hangs in the handshake
	src := &addrSource{}
	src.set("127.0.0.1")
	x.localIPs = src.get
	startOffline(t, x)
	first := b.next(t, 5*time.Second)
	src.set("127.0.0.1", "192.0.2.7")
	start := time.Now()
	x.addrsChanged()
	b.next(t, 2*time.Second)
	first.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.Copy(io.Discard, first); err != nil { // the ClientHello, then EOF
		t.Fatalf("the cancelled dial's connection: %v, want it closed", err)
	}
	t.Logf("redialed after %v", time.Since(start))
}
