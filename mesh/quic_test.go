package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
	"github.com/pion/stun/v3"
)

// startUnreachable starts a member of a's mesh that advertises an address
// nobody can dial and signs no address record, as a member behind a NAT.
func startUnreachable(t *testing.T, a *Node, name string) *Node {
	t.Helper()
	cfg := joinConfig(t, a, name)
	cfg.Advertise = []string{"127.0.0.1:1"} // refused: nobody dials it
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.noRecord = true
	n.stunLoopback = true // its candidates come from alice's STUN answer on 127.0.0.1
	t.Cleanup(func() { n.Close() })
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return n
}

// heldCandidates reports an error unless n holds UDP candidates for each
// of ids (from their CANDIDATES).
func heldCandidates(n *Node, ids ...PeerID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, id := range ids {
		if p := n.peers[id]; p == nil || len(p.udp) == 0 {
			return fmt.Errorf("no udp candidates for %s", id.Short())
		}
	}
	return nil
}

// transportOf reports an error unless n shows member id punched over
// the named transport.
func transportOf(n *Node, id PeerID, transport string) error {
	for _, p := range n.Peers() {
		if p.ID == id {
			if p.Link != LinkPunched || p.Transport != transport {
				return fmt.Errorf("%s: link %q transport %q, want punched over %s", p.Name, p.Link, p.Transport, transport)
			}
			return nil
		}
	}
	return errors.New("member not listed")
}

// TestPunchQUIC: bob and carol cannot dial each other; alice, connected
// to both, holds their UDP candidates and introduces them. They meet over
// QUIC, pinned to each other, and frames flow both ways.
func TestPunchQUIC(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	b, c := startUnreachable(t, a, "bob"), startUnreachable(t, a, "carol")
	if err := testutil.WaitFor(10*time.Second, func() error {
		if err := heldCandidates(a, b.ID(), c.ID()); err != nil {
			return err
		}
		return linkOf(b, c.ID(), LinkRelayed, a.ID())
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !b.askIntroduction(c.ID()) {
		t.Fatal("askIntroduction(carol) = false, want a PUNCH_REQ sent")
	}
	if err := testutil.WaitFor(10*time.Second, func() error {
		return errors.Join(transportOf(b, c.ID(), "quic"), transportOf(c, b.ID(), "quic"))
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("punched over quic in %v", time.Since(start).Round(time.Millisecond))
	if err := b.SendChat(t.Context(), c.ID(), Chat{Seq: 1, Text: "over quic"}); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1<<20)
	if err := c.SendBulk(t.Context(), b.ID(), big); err != nil {
		t.Fatal(err)
	}
	if err := testutil.WaitFor(10*time.Second, func() error {
		if got := rec(c).chats(); len(got) != 1 || got[0] != "over quic" {
			return fmt.Errorf("carol's chats = %q", got)
		}
		for _, d := range rec(b).bytes() {
			if len(d) == len(big) {
				return nil
			}
		}
		return errors.New("bob has not got carol's 1 MiB")
	}); err != nil {
		t.Fatal(err)
	}
	// Closing says why over QUIC too: carol's BYE reaches bob before the
	// connection goes.
	c.Close()
	if err := testutil.WaitFor(10*time.Second, func() error {
		for _, e := range rec(b).snapshot() {
			d, ok := e.(PeerDisconnected)
			if !ok || d.Peer.ID != c.ID() {
				continue
			}
			var bye *ByeError
			if !errors.As(d.Err, &bye) || bye.code != reasonShutdown {
				return fmt.Errorf("bob lost carol with %v, want her BYE (shutting down)", d.Err)
			}
			return nil
		}
		return errors.New("bob has not lost carol")
	}); err != nil {
		t.Fatal(err)
	}
}

// TestQUICUnexpectedRefused: a member's QUIC dial that no PUNCH made the
// other side expect is refused in the handshake, as is one pinned to the
// wrong member.
func TestQUICUnexpectedRefused(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	b := startNode(t, joinConfig(t, a, "bob"))
	if err := testutil.WaitFor(10*time.Second, func() error { return connectedTo(b, a.ID()) }); err != nil {
		t.Fatal(err)
	}
	to := udpAddrOf(t, a)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if conn, err := b.dialQUIC(ctx, to, a.ID()); err == nil {
		conn.Close()
		t.Fatal("dialQUIC to a node that expects nobody succeeded")
	}
	ch := a.udp.expect(b.ID())
	defer a.udp.unexpect(b.ID(), ch)
	if conn, err := b.dialQUIC(ctx, to, b.ID()); err == nil { // pinned to itself
		conn.Close()
		t.Fatal("dialQUIC pinned to the wrong member succeeded")
	}
}

// udpAddrOf is n's UDP socket address.
func udpAddrOf(t *testing.T, n *Node) netip.AddrPort {
	t.Helper()
	if n.udp == nil {
		t.Fatalf("%s has no udp socket", n.Name())
	}
	ap, _ := addrPortOf(n.Addr())
	return ap
}

// TestSTUNResponder: a Binding request gets a response with the address
// it came from; a second one at once is not answered (rate limit), and a
// request of another method is not answered at all.
func TestSTUNResponder(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	to := net.UDPAddrFromAddrPort(udpAddrOf(t, a))
	ask := func(typ stun.MessageType) (*stun.Message, error) {
		req := stun.MustBuild(stun.TransactionID, typ)
		if _, err := uc.WriteTo(req.Raw, to); err != nil {
			return nil, err
		}
		uc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 512)
		k, _, err := uc.ReadFrom(buf)
		if err != nil {
			return nil, err
		}
		resp := &stun.Message{Raw: buf[:k]}
		if err := resp.Decode(); err != nil {
			return nil, err
		}
		if resp.TransactionID != req.TransactionID {
			return nil, errors.New("transaction id differs")
		}
		return resp, nil
	}
	resp, err := ask(stun.BindingRequest)
	if err != nil {
		t.Fatalf("binding request: %v", err)
	}
	var xa stun.XORMappedAddress
	if err := xa.GetFrom(resp); err != nil {
		t.Fatal(err)
	}
	if got, want := (&net.UDPAddr{IP: xa.IP, Port: xa.Port}).String(), uc.LocalAddr().String(); got != want {
		t.Errorf("mapped address = %s, want %s", got, want)
	}
	if _, err := ask(stun.BindingRequest); err == nil {
		t.Error("a second request within stunAnswerEvery was answered")
	}
	time.Sleep(stunAnswerEvery)
	if _, err := ask(stun.NewType(stun.MethodAllocate, stun.ClassRequest)); err == nil {
		t.Error("an Allocate request was answered")
	}
}

// TestSTUNResponseChecked: a Binding response counts only from the
// address its request went to, and only for a transaction we sent.
func TestSTUNResponseChecked(t *testing.T) {
	u := &udpPath{waits: map[[stun.TransactionIDSize]byte]stunWaiter{}}
	to := netip.MustParseAddrPort("198.51.100.7:4000")
	ch := make(chan stunResult, 1)
	var id [stun.TransactionIDSize]byte
	id[0] = 1
	u.waits[id] = stunWaiter{to: to, ch: ch}
	resp := func(txid [stun.TransactionIDSize]byte) *stun.Message {
		m := stun.MustBuild(stun.NewTransactionIDSetter(txid), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: net.IPv4(203, 0, 113, 9), Port: 5000})
		return m
	}
	u.deliver(resp(id), netip.MustParseAddrPort("198.51.100.8:4000")) // wrong source
	var other [stun.TransactionIDSize]byte
	u.deliver(resp(other), to) // not ours
	select {
	case r := <-ch:
		t.Fatalf("accepted %v", r)
	default:
	}
	u.deliver(resp(id), to)
	select {
	case r := <-ch:
		if want := netip.MustParseAddrPort("203.0.113.9:5000"); r.mapped != want {
			t.Errorf("mapped = %v, want %v", r.mapped, want)
		}
	default:
		t.Fatal("the right response was not delivered")
	}
}
