package sync

import (
	"slices"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

// Recent files, for `meshfs status --json` and the page: the deliveries
// verified since this node started, and the latest files placed in inbox/.
// Both are read from state the engine keeps anyway; the ring below only
// remembers what Status would otherwise drop the moment a delivery is
// verified.

// maxRecent bounds each list of recent files.
const maxRecent = 20

// ArrivalStatus is a file placed in this member's inbox.
type ArrivalStatus struct {
	Path string    `json:"path"` // relative to the tree: "inbox/<member>/<name>"
	Peer string    `json:"peer"` // display name of the sender
	At   time.Time `json:"at"`   // when it was placed
}

// noteDelivered remembers a verified delivery, newest last, dropping the
// oldest past maxRecent.
func (o *outbound) noteDelivered(t TransferStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.recent = append(o.recent, t)
	if n := len(o.recent) - maxRecent; n > 0 {
		o.recent = slices.Delete(o.recent, 0, n)
	}
}

// delivered lists the recent verified deliveries, newest first.
func (o *outbound) delivered() []TransferStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := slices.Clone(o.recent)
	slices.Reverse(out)
	return out
}

// arrivals lists the latest placements, newest first: the files a person
// would look for in inbox/ now.
func (ib *inbound) arrivals() []ArrivalStatus {
	type arrival struct {
		peer mesh.PeerID
		pl   placement
	}
	ib.mu.Lock()
	list := make([]arrival, 0, len(ib.placed))
	for k, pl := range ib.placed {
		list = append(list, arrival{k.peer, pl})
	}
	ib.mu.Unlock()
	slices.SortFunc(list, func(a, b arrival) int { return b.pl.at.Compare(a.pl.at) })
	out := make([]ArrivalStatus, 0, min(len(list), maxRecent))
	for _, a := range list[:min(len(list), maxRecent)] { // names outside ib.mu: one lock at a time
		out = append(out, ArrivalStatus{Path: a.pl.rel, Peer: ib.peers.displayName(a.peer), At: a.pl.at})
	}
	return out
}
