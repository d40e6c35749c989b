package mesh

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
)

// TestPeersReplyCoversRoster: a member list longer than one PEERS reaches
// a member that asks again and again whole, in ceil(members/256)
// answers: each takes up, in ID order, right after the member the last
// one ended with, wrapping around; the answering member's own entry
// leads each. And the first answers on new connections start at
// different members.
func TestPeersReplyCoversRoster(t *testing.T) {
	a := newOffline(t, testConfig(t, "alice"))
	const members = 600
	var ids []PeerID
	for i := range members {
		id := PeerID(sha256.Sum256(fmt.Appendf(nil, "m%d", i))) // spread over the ID space, added out of order
		a.roster[id] = &member{ID: id, Name: fmt.Sprintf("m%d", i), Cert: bytes.Repeat([]byte{byte(i)}, 300)}
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y PeerID) int { return bytes.Compare(x[:], y[:]) })
	p := &peer{} // from the lowest ID, where newPeer picks a random one
	seen := map[PeerID]bool{}
	next := 0 // index in ids of the member the next answer must start with
	for r := range (members + maxPeersEntries - 1) / maxPeersEntries {
		entries, err := decodePeers(a.peersReply(p))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 0 || entries[0].ID != a.ID() {
			t.Fatalf("answer %d does not start with alice's own entry", r+1)
		}
		for i, e := range entries[1:] {
			if want := ids[(next+i)%members]; e.ID != want {
				t.Fatalf("answer %d: entry %d is %s, want %s", r+1, i, e.ID, want)
			}
			seen[e.ID] = true
		}
		next = (next + len(entries) - 1) % members
	}
	if len(seen) != members {
		t.Errorf("the answers listed %d of %d members", len(seen), members)
	}
	starts := map[PeerID]bool{}
	for range 8 {
		entries, err := decodePeers(a.peersReply(&peer{peersNext: randomPeerID()})) // as newPeer makes it
		if err != nil {
			t.Fatal(err)
		}
		starts[entries[1].ID] = true
	}
	if len(starts) < 4 {
		t.Errorf("the first answers on 8 new connections started at %d different members; want them spread", len(starts))
	}
}
