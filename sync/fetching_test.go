package sync

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
	"github.com/meshfs/meshfs/mesh"
)

// TestFetchingShownToAuthor: carol takes alice's file from bob, and her
// FETCHING makes alice show "fetching from bob 37%" for carol, in the
// xattr text and in status, while alice does not send it herself; one
// naming no member brings the state alice had back; notices closer than a
// second with the same members are not sent; "verified" once carol has
// the file.
func TestFetchingShownToAuthor(t *testing.T) {
	n := newFakeNet(t)
	// A busy refusal is retried after a second: between retries alice
	// does not send it herself, and shows what carol says. The delivered
	// file stays in outbox/ (and its state readable) for a minute.
	a := n.addNode("alice", func(c *Config) { c.RetryInterval, c.TreeSettle = 4*time.Second, time.Minute })
	b, c := n.addNode("bob", nil), n.addNode("carol", nil)
	for _, fn := range []*fakeNode{a, b, c} {
		fn.start()
	}
	var notices atomic.Int64
	n.mu.Lock()
	n.mutate = func(from, to mesh.PeerID, d []byte) []byte {
		if from == c.id && to == a.id && kind(d[0]) == kindFetching {
			notices.Add(1)
		}
		return d
	}
	n.mu.Unlock()
	n.connect(a, b)
	n.connect(b, c)
	open := n.gate(b, c, 3) // carol holds 3 of the 8 blocks until the gate opens
	data := randBytes(61, 8*minBlockSize)
	a.put("via.bin", data)
	k := inKey{a.id, a.recordID(t, "via.bin")}
	waitFor(t, func() bool { return blocksHeld(c, k) == 3 })
	n.connect(a, c) // alice offers it too: carol is busy with it, from bob
	waitFor(t, func() bool { p := c.engine().peers.get(a.id); return p != nil && p.speaksOurs() })

	ib := c.engine().in
	ib.tellFetching(k, []mesh.PeerID{b.id}, 3, 8)
	waitDelivery(t, a, "via.bin", "carol", func(s string) bool { return s == "fetching from bob 37%" })
	waitFor(t, func() bool { return fetchingInStatus(a, "carol", "fetching from bob 37%", int64(len(data))*3/8) })

	ib.tellFetching(k, []mesh.PeerID{b.id}, 5, 8) // within a second, same members
	if got := notices.Load(); got != 1 {
		t.Errorf("%d FETCHINGs sent, want 1: the second came within a second with the same members", got)
	}
	ib.tellFetching(k, nil, 5, 8) // waiting: alice shows her own state again
	waitDelivery(t, a, "via.bin", "carol", func(s string) bool { return !strings.HasPrefix(s, "fetching") })
	ib.tellFetching(k, []mesh.PeerID{b.id}, 5, 8)
	waitDelivery(t, a, "via.bin", "carol", func(s string) bool { return s == "fetching from bob 62%" })
	if got := notices.Load(); got != 3 {
		t.Errorf("%d FETCHINGs sent, want 3: each change of members goes at once", got)
	}

	open()
	c.waitFile("inbox/alice/via.bin", data)
	ib.forgetFetching(k)
	waitDelivery(t, a, "via.bin", "carol", func(s string) bool { return s == "verified" })
	waitFor(t, func() bool { return len(noteOf(a, k.id, c.id).from) == 0 })
	ib.fetchSent.mu.Lock()
	defer ib.fetchSent.mu.Unlock()
	if len(ib.fetchSent.last) != 0 {
		t.Errorf("rate state of %d transfers kept after forgetFetching", len(ib.fetchSent.last))
	}
}

// TestFetchingNotToAnAbsentAuthor: an author that is not connected is not
// told, and that leaves no rate state behind: the first notice once it is
// connected goes at once.
func TestFetchingNotToAnAbsentAuthor(t *testing.T) {
	n := newFakeNet(t)
	a, c := n.addNode("alice", nil), n.addNode("carol", nil)
	a.start()
	c.start()
	k := inKey{a.id, transferID{7}}
	c.engine().in.tellFetching(k, []mesh.PeerID{{1}}, 1, 2)
	if due := c.engine().in.fetchSent.due(k, []mesh.PeerID{{1}}, time.Now()); !due {
		t.Error("a notice that was never sent held back the next")
	}
}

// TestFetchingDue: the rate limit of FETCHINGs about one transfer.
func TestFetchingDue(t *testing.T) {
	var n fetchNotices
	k, other := inKey{mesh.PeerID{1}, transferID{1}}, inKey{mesh.PeerID{1}, transferID{2}}
	bob, carol := mesh.PeerID{2}, mesh.PeerID{3}
	t0 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		name string
		k    inKey
		from []mesh.PeerID
		at   time.Duration
		want bool
	}{
		{"first", k, []mesh.PeerID{bob}, 0, true},
		{"same members at once", k, []mesh.PeerID{bob}, 10 * time.Millisecond, false},
		{"another transfer", other, []mesh.PeerID{bob}, 20 * time.Millisecond, true},
		{"members changed", k, []mesh.PeerID{bob, carol}, 30 * time.Millisecond, true},
		{"same again", k, []mesh.PeerID{bob, carol}, 500 * time.Millisecond, false},
		{"waiting now", k, nil, 600 * time.Millisecond, true},
		{"still waiting", k, []mesh.PeerID{}, 700 * time.Millisecond, false},
		{"a second later", k, nil, 1600 * time.Millisecond, true},
	}
	for _, s := range steps {
		if got := n.due(s.k, s.from, t0.Add(s.at)); got != s.want {
			t.Errorf("%s: due(%v) = %v, want %v", s.name, s.from, got, s.want)
		}
	}
	n.forget(k)
	if !n.due(k, nil, t0.Add(1700*time.Millisecond)) {
		t.Error("due after forget = false, want true")
	}
}

// TestFetchingText: what the author shows for a member's delivery.
func TestFetchingText(t *testing.T) {
	now, owner := time.Now(), &peerConn{}
	note := func(have, blocks uint32, age time.Duration, from ...string) fetchNote {
		return fetchNote{from: strings.Join(from, ", "), have: have, blocks: blocks, at: now.Add(-age)}
	}
	tests := []struct {
		name string
		d    delivery
		want string
	}{
		{"fetching from one", delivery{State: StateQueued, fetch: note(3, 8, 0, "bob")}, "fetching from bob 37%"},
		{"fetching from two", delivery{State: StateQueued, fetch: note(45, 100, time.Second, "bob", "carol")}, "fetching from bob, carol 45%"},
		{"all held, not verified", delivery{State: StateQueued, fetch: note(8, 8, 0, "bob")}, "fetching from bob 99%"},
		{"no blocks known", delivery{State: StateQueued, fetch: note(0, 0, 0, "bob")}, "fetching from bob 0%"},
		{"refused busy meanwhile", delivery{State: StateRefused, Reason: "busy", fetch: note(1, 2, 0, "bob")}, "fetching from bob 50%"},
		{"waiting", delivery{State: StateQueued, fetch: note(3, 8, 0)}, "queued"},
		{"stale", delivery{State: StateQueued, fetch: note(3, 8, fetchingFresh+time.Second, "bob")}, "queued"},
		{"sent by us too", delivery{State: StateQueued, owner: owner, phase: PhaseOffered, fetch: note(3, 8, 0, "bob")}, "offered"},
		{"verified", delivery{State: StateVerified, fetch: note(3, 8, 0, "bob")}, "verified"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := deliveryText(&tc.d, 100); got != tc.want {
				t.Errorf("deliveryText = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFetchingCodec: FETCHING round trips, and the decoder refuses every
// truncation, trailing bytes and each bound.
func TestFetchingCodec(t *testing.T) {
	sources := func(n int) []mesh.PeerID {
		ids := make([]mesh.PeerID, n)
		for i := range ids {
			ids[i] = mesh.PeerID{byte(i + 1)}
		}
		return ids
	}
	good := []*fetchingMsg{
		{Author: mesh.PeerID{9}, ID: transferID{1}, Have: 3, Blocks: 8, From: sources(2)},
		{Author: mesh.PeerID{9}, ID: transferID{1}, Have: 0, Blocks: 0},
		{Author: mesh.PeerID{9}, ID: transferID{1}, Have: maxBlocks, Blocks: maxBlocks, From: sources(maxFetchSources)},
	}
	for _, m := range good {
		b := m.encode()
		got, err := decodeMessage(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("decodeMessage(encode(%+v)) = %+v, %v", m, got, err)
		}
		for i := 1; i < len(b); i++ {
			if got, err := decodeMessage(b[:i]); !errors.Is(err, errProto) {
				t.Errorf("decodeMessage of %d of %d bytes = %+v, %v, want protocol error", i, len(b), got, err)
			}
		}
	}
	full := good[0].encode()
	bad := []struct {
		name string
		in   []byte
	}{
		{"trailing byte", append(bytes.Clone(full), 0)},
		{"too many members", (&fetchingMsg{Author: mesh.PeerID{9}, Blocks: 1, From: sources(maxFetchSources + 1)}).encode()},
		{"count over the members", append(bytes.Clone(full[:len(full)-2*32-1]), 3)},
		{"have over blocks", (&fetchingMsg{Author: mesh.PeerID{9}, Have: 9, Blocks: 8}).encode()},
		{"blocks over the limit", (&fetchingMsg{Author: mesh.PeerID{9}, Have: 1, Blocks: maxBlocks + 1}).encode()},
		{"no author", (&fetchingMsg{Blocks: 1}).encode()},
	}
	for _, tc := range bad {
		if got, err := decodeMessage(tc.in); !errors.Is(err, errProto) {
			t.Errorf("%s: decodeMessage = %+v, %v, want protocol error", tc.name, got, err)
		}
	}
}

// TestFetchingNotSentOutOfBounds: what the author's decoder would drop is
// not sent.
func TestFetchingNotSentOutOfBounds(t *testing.T) {
	k := inKey{mesh.PeerID{9}, transferID{1}}
	for _, tc := range []struct {
		name         string
		from         []mesh.PeerID
		have, blocks int
	}{
		{"too many members", make([]mesh.PeerID, maxFetchSources+1), 1, 2},
		{"have over blocks", nil, 3, 2},
		{"negative", nil, -1, 2},
		{"too many blocks", nil, 1, maxBlocks + 1},
	} {
		if m, err := newFetchingMsg(k, tc.from, tc.have, tc.blocks); err == nil {
			t.Errorf("%s: newFetchingMsg = %+v, want an error", tc.name, m)
		}
	}
}

// blocksHeld is how many blocks of transfer k fn holds (-1: no such transfer).
func blocksHeld(fn *fakeNode, k inKey) int {
	ib := fn.engine().in
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if t := ib.transfers[k]; t != nil {
		return t.have.count()
	}
	return -1
}

// noteOf is what fn, the author, keeps of member who's FETCHING about id.
func noteOf(fn *fakeNode, id transferID, who mesh.PeerID) fetchNote {
	o := fn.engine().out
	o.mu.Lock()
	defer o.mu.Unlock()
	if rec := o.records[id]; rec != nil && rec.Peers[who.String()] != nil {
		return rec.Peers[who.String()].fetch
	}
	return fetchNote{}
}

// waitDelivery polls until fn's delivery state of rel for member name is
// one ok accepts.
func waitDelivery(t *testing.T, fn *fakeNode, rel, name string, ok func(string) bool) {
	t.Helper()
	err := testutil.WaitFor(effectTimeout, func() error {
		states, _ := fn.engine().Delivery(rel)
		if s := states[name]; !ok(s) {
			return fmt.Errorf("delivery to %s is %q", name, s)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s, %s: %v", fn.name, rel, err)
	}
}

// fetchingInStatus reports whether fn's status lists its delivery to peer
// with state and done bytes, and the peers table counts it.
func fetchingInStatus(fn *fakeNode, peer, state string, done int64) bool {
	st := fn.engine().Status()
	listed := false
	for _, tr := range st.Transfers {
		listed = listed || tr.Peer == peer && tr.State == state && tr.Done == done
	}
	return listed && strings.Contains(string(fn.engine().PeersTable()), "1 fetching from others")
}
