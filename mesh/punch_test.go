package mesh

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// TestIntroduction: two members connected to alice but not to each other;
// one asks alice to introduce it, and each gets a PUNCH naming the other
// at the address alice sees the other's connection come from.
func TestIntroduction(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	x, y := issueFor(t, a, "xavier"), issueFor(t, a, "yvonne")
	hx, hy := fakeMember(t, x, a), fakeMember(t, y, a)
	if err := testutil.WaitFor(5*time.Second, func() error { return connectedTo(a, x.ID(), y.ID()) }); err != nil {
		t.Fatal(err)
	}
	yid := y.ID()
	send(t, hx, encodeFrame(framePunchReq, yid[:]))
	for _, c := range []struct {
		hs   *handshakeResult
		want punch
	}{
		{hx, punch{Peer: y.ID(), Addr: hy.conn.LocalAddr().String()}},
		{hy, punch{Peer: x.ID(), Addr: hx.conn.LocalAddr().String()}},
	} {
		if got := readPunch(t, c.hs); !reflect.DeepEqual(got, c.want) {
			t.Errorf("PUNCH = %+v, want %+v", got, c.want)
		}
	}
}

// readPunch reads frames from hs until a PUNCH, for at most 5 s.
func readPunch(t *testing.T, hs *handshakeResult) punch {
	t.Helper()
	hs.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := readFrame(hs.br, 1<<20, nil)
		if err != nil {
			t.Fatalf("no PUNCH: %v", err)
		}
		if f.Type != framePunch {
			continue
		}
		pu, err := decodePunch(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		return pu
	}
}

// TestRelayedThrough: bob and carol advertise addresses nobody can dial
// and do not punch; both reach alice. Each shows the other as relayed
// through alice, and as unreachable once alice is gone.
func TestRelayedThrough(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	cfgs := []Config{joinConfig(t, a, "bob"), joinConfig(t, a, "carol")}
	var nodes []*Node
	for _, cfg := range cfgs {
		cfg.Advertise = []string{"127.0.0.1:1"} // refused: nobody dials them
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		n.noPunch = true
		n.noRecord = true // its listen address would be in a record, and dialable
		t.Cleanup(func() { n.Close() })
		if err := n.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	b, c := nodes[0], nodes[1]
	if err := testutil.WaitFor(10*time.Second, func() error {
		return linkOf(b, c.ID(), LinkRelayed, a.ID())
	}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := testutil.WaitFor(10*time.Second, func() error {
		return linkOf(b, c.ID(), LinkNone)
	}); err != nil {
		t.Fatal(err)
	}
}

// linkOf reports an error unless n shows member id reached by link,
// through exactly the members listed.
func linkOf(n *Node, id PeerID, link Link, through ...PeerID) error {
	for _, p := range n.Peers() {
		if p.ID != id {
			continue
		}
		if p.Link != link || !slices.Equal(p.Through, through) {
			return fmt.Errorf("%s: link %q through %v, want %q through %v", p.Name, p.Link, p.Through, link, through)
		}
		return nil
	}
	return errors.New("member not listed")
}

func TestPunchPayloadRefused(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":         nil,
		"short id":      make([]byte, 31),
		"no port":       encodePunch(punch{Addr: "198.51.100.7"}),
		"control chars": encodePunch(punch{Addr: "a\x1bb:1"}),
		"trailing":      append(encodePunch(punch{Addr: "198.51.100.7:1"}), 0),
	} {
		if _, err := decodePunch(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, err := decodePunchReq(make([]byte, 33)); err == nil {
		t.Error("PUNCH_REQ with a trailing byte decoded")
	}
}
