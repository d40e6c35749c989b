package mesh

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

func TestMeshConvergesAndDelivers(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	if !a.Created() || !a.IsAdmin() {
		t.Fatalf("admin: Created() = %v, IsAdmin() = %v, want true, true", a.Created(), a.IsAdmin())
	}
	b := startNode(t, joinConfig(t, a, "bob"))
	c := startNode(t, joinConfig(t, a, "carol"))
	fullMesh(t, a, b, c)
	if b.IsAdmin() || b.Created() || b.MeshID() != a.MeshID() {
		t.Fatalf("bob: IsAdmin %v Created %v MeshID %q, want false false %q", b.IsAdmin(), b.Created(), b.MeshID(), a.MeshID())
	}
	ctx := t.Context()
	for i := range 20 {
		if err := b.SendChat(ctx, c.ID(), Chat{Seq: uint64(i + 1), Time: time.Now(), Text: fmt.Sprint("hi ", i)}); err != nil {
			t.Fatalf("SendChat = %v", err)
		}
		if err := b.SendBulk(ctx, c.ID(), []byte{byte(i)}); err != nil {
			t.Fatalf("SendBulk = %v", err)
		}
	}
	if err := a.BroadcastChat(ctx, Chat{Text: "to all"}); err != nil {
		t.Fatal(err)
	}
	err := testutil.WaitFor(5*time.Second, func() error {
		if got := len(rec(c).chats()); got != 21 {
			return fmt.Errorf("carol has %d chats", got)
		}
		if got := len(rec(c).bytes()); got != 20 {
			return fmt.Errorf("carol has %d bytes frames", got)
		}
		if got := rec(b).chats(); !slices.Equal(got, []string{"to all"}) {
			return fmt.Errorf("bob chats %q", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var fromBob []string
	for _, e := range rec(c).snapshot() {
		if ch, ok := e.(ChatReceived); ok && ch.From.ID == b.ID() {
			fromBob = append(fromBob, ch.Chat.Text)
		}
	}
	for i, s := range fromBob {
		if want := fmt.Sprint("hi ", i); s != want {
			t.Fatalf("chat %d = %q, want %q (in order)", i, s, want)
		}
	}
	for i, d := range rec(c).bytes() {
		if !bytes.Equal(d, []byte{byte(i)}) {
			t.Fatalf("bytes %d = %v, want [%d]", i, d, i)
		}
	}
	peers := a.Peers()
	if len(peers) != 2 || peers[0].Name != "bob" || peers[1].Name != "carol" || peers[0].State != Connected {
		t.Fatalf("Peers() = %+v, want bob and carol connected", peers)
	}
	if err := testutil.WaitFor(5*time.Second, func() error {
		if a.Peers()[0].RTT == 0 {
			return errors.New("no rtt yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestLargerMeshOneConnectionPerPair: members that only know the admin
// converge to a full mesh with the same single connection on both ends.
func TestLargerMeshOneConnectionPerPair(t *testing.T) {
	a := startNode(t, testConfig(t, "n0"))
	nodes := []*Node{a}
	for i := 1; i < 6; i++ {
		nodes = append(nodes, startNode(t, joinConfig(t, a, fmt.Sprint("n", i))))
	}
	start := time.Now()
	fullMesh(t, nodes...)
	t.Logf("full mesh of %d in %v", len(nodes), time.Since(start))
	err := testutil.WaitFor(5*time.Second, func() error {
		for _, x := range nodes {
			for _, y := range nodes {
				if x == y {
					continue
				}
				px, py := livePeer(x, y.ID()), livePeer(y, x.ID())
				if px == nil || py == nil || px.tiebreak != py.tiebreak {
					return fmt.Errorf("%s and %s disagree on their connection", x.Name(), y.Name())
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
