package sync

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// row60Fetching: FETCHINGs bob must drop or ignore. mallory sends one
// naming 17 members, one saying she holds more blocks than the file has
// (both dropped at the decoder), one about carol's transfer (not bob's)
// and one about a transfer bob never made; eve, who joined after bob's
// file was recorded and so has no delivery on it, sends one about it. None
// may change a delivery of bob's. A FETCHING of mallory's about another
// file of bob's marks when hers were all handled (one link delivers in
// order), and eve's chat line when hers was.
func row60Fetching(t *testing.T, v *syncVictim) {
	carol := v.n.nodeNamed(t, "carol")
	v.b.put("fetched.txt", []byte("bob's file, fetched from others"))
	v.b.put("marker.txt", []byte("bob's second file"))
	id, marker := v.b.recordID(t, "fetched.txt"), v.b.recordID(t, "marker.txt")
	eve := newEvil(t, v.n, "eve", v.b)
	eve.t = t
	defer v.n.cut(eve.fakeNode, v.b)

	many := make([]mesh.PeerID, maxFetchSources+1)
	for i := range many {
		many[i] = mesh.PeerID{byte(i + 1)}
	}
	for _, m := range []*fetchingMsg{
		{Author: v.b.id, ID: id, Have: 1, Blocks: 1, From: many},
		{Author: v.b.id, ID: id, Have: 2, Blocks: 1, From: []mesh.PeerID{carol.id}},
		{Author: carol.id, ID: id, Have: 1, Blocks: 1, From: []mesh.PeerID{carol.id}},
		{Author: v.b.id, ID: transferID{0xfe}, Have: 1, Blocks: 1, From: []mesh.PeerID{carol.id}},
	} {
		v.ev.sendTo(v.b, m)
	}
	eve.sendTo(v.b, &fetchingMsg{Author: v.b.id, ID: id, Have: 1, Blocks: 1, From: []mesh.PeerID{carol.id}})
	eve.sendTo(v.b, &recordsMsg{Records: []record.Chat{eve.line(1, "eve's line")}})
	v.ev.sendTo(v.b, &fetchingMsg{Author: v.b.id, ID: marker, Have: 1, Blocks: 2, From: []mesh.PeerID{v.ev.id}})
	waitFor(t, func() bool { return noteOf(v.b, marker, v.ev.id).from != "" })
	waitChatHas(t, v.b, "eve: eve's line")

	o := v.b.engine().out
	o.mu.Lock()
	for _, rec := range o.records {
		for key, d := range rec.Peers {
			if len(d.fetch.from) > 0 && !(rec.ID == marker && key == v.ev.id.String()) {
				t.Errorf("%s's delivery of %s changed by a bad FETCHING: %+v", key[:8], rec.Rel, d.fetch)
			}
		}
	}
	o.mu.Unlock()
	for _, rel := range []string{"fetched.txt", "marker.txt"} {
		os.Remove(filepath.Join(v.b.root, "outbox", rel))
		v.b.engine().OutboxRemoved(rel)
	}
	v.check(t)
}
