package sync

import (
	"testing"
)

// TestStatusRecent: a verified delivery stays in the sender's
// Status.Delivered after it leaves Transfers, and the receiver lists the
// file placed under Arrivals, by its inbox path.
func TestStatusRecent(t *testing.T) {
	n := newFakeNet(t)
	a, b := n.addNode("alice", nil), n.addNode("bob", nil)
	a.start()
	b.start()
	n.connect(a, b)
	data := randBytes(40, 3*minBlockSize)
	a.put("recent.bin", data)
	b.waitFile("inbox/alice/recent.bin", data)
	waitFor(t, func() bool { return len(a.engine().Status().Delivered) == 1 })
	st := a.engine().Status()
	d := st.Delivered[0]
	if d.Path != "recent.bin" || d.Peer != "bob" || d.State != string(StateVerified) || d.Done != int64(len(data)) || d.FinishedAt.IsZero() {
		t.Errorf("Status().Delivered[0] = %+v, want recent.bin verified to bob, %d bytes, with a finish time", d, len(data))
	}
	for _, tr := range st.Transfers {
		if tr.Path == "recent.bin" {
			t.Errorf("Status().Transfers still lists %+v once verified", tr)
		}
	}
	var arr []ArrivalStatus
	waitFor(t, func() bool { arr = b.engine().Status().Arrivals; return len(arr) == 1 })
	if arr[0].Path != "inbox/alice/recent.bin" || arr[0].Peer != "alice" || arr[0].At.IsZero() {
		t.Errorf("Status().Arrivals = %+v, want inbox/alice/recent.bin from alice with a time", arr)
	}
}

// TestNoteDeliveredBounded: the ring keeps the newest maxRecent, newest
// first.
func TestNoteDeliveredBounded(t *testing.T) {
	var o outbound
	for i := range maxRecent + 5 {
		o.noteDelivered(TransferStatus{Done: int64(i)})
	}
	got := o.delivered()
	if len(got) != maxRecent || got[0].Done != maxRecent+4 || got[len(got)-1].Done != 5 {
		t.Errorf("delivered() = %d entries from %d to %d, want %d from %d to 5", len(got), got[0].Done, got[len(got)-1].Done, maxRecent, maxRecent+4)
	}
}
