package mesh

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// The overlay. In a mesh of up to Config.FullMeshUpTo members every member
// connects to every other: the fastest path for everything, and cheap at
// that size. Above it each connection costs every member keepalives,
// buffers and a share of every broadcast, so a member keeps a bounded
// random set of connections instead, in the spirit of HyParView: it dials
// members picked at random from its member list (the passive view) until
// it has ActiveView connections (the active view), and keeps at most
// maxConns (2 × ActiveView). A member at that cap that is dialed makes
// room by closing a random connection (BYE "too many peers") rather than
// refusing, so a newcomer always gets in; the member cut off dials another
// if it is left with fewer than ActiveView. When a mesh grows past the
// threshold, its first members close what they hold over the cap.
//
// Nothing above the mesh needs a connection to every member: records and
// files spread because every member passes on what it holds to the
// members it is connected to (package sync). News of members spreads by
// gossip: a member that learns members from a PEERS passes just those
// entries on to its other connections, once.

// partialLocked reports whether the mesh is over FullMeshUpTo (mu held).
func (n *Node) partialLocked() bool {
	members := len(n.roster)
	if _, ok := n.roster[n.self]; !ok {
		members++ // this node
	}
	return members > n.cfg.FullMeshUpTo
}

// maxConnsLocked caps live connections (mu held).
func (n *Node) maxConnsLocked() int {
	if n.partialLocked() {
		return min(n.cfg.MaxPeers, 2*n.cfg.ActiveView)
	}
	return n.cfg.MaxPeers
}

// dialBudgetLocked is how many members to dial now (mu held): any number
// in a full mesh; in a partial one, what fills the active view, counting
// the dials under way.
func (n *Node) dialBudgetLocked() int {
	if !n.partialLocked() {
		return math.MaxInt
	}
	busy := 0
	for key, ds := range n.dials {
		if ds.busy && strings.HasPrefix(key, "id:") {
			busy++
		}
	}
	return n.cfg.ActiveView - len(n.peers) - busy
}

// dialCandidatesLocked lists the members that could be dialed now, in
// random order (mu held): known addresses, no connection, not revoked, no
// dial under way or backing off.
func (n *Node) dialCandidatesLocked(now time.Time) []PeerID {
	var out []PeerID
	for id, m := range n.roster {
		if id == n.self || n.peers[id] != nil || n.revs.has(id) || !m.dialable() {
			continue
		}
		if ds := n.dials[idKey(id)]; ds != nil && (ds.busy || ds.done || now.Before(ds.next)) {
			continue
		}
		out = append(out, id)
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// gossipEntry is a newly learned member's entry as gossipMembers passes it
// on: with the record this node verified, never one it did not.
func (n *Node) gossipEntry(pe peerEntry) peerEntry {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := peerEntry{ID: pe.ID, Cert: pe.Cert, Addrs: pe.Addrs}
	if m := n.roster[pe.ID]; m != nil {
		out.Record = m.Record.wire()
	}
	return out
}

// gossipMembers passes entries of members this node just learned on to
// its other connections, in a partial mesh, where not every member hears
// of a new one from the new member itself. Each member passes an entry on
// only the first time it learns it, so the gossip ends.
func (n *Node) gossipMembers(from *peer, fresh []peerEntry) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(fresh) == 0 || !n.partialLocked() {
		return
	}
	f := encodeFrame(framePeers, encodePeers(fresh))
	for _, q := range n.peers {
		if q != from {
			q.trySend(f)
		}
	}
}

// trimExcess closes connections over maxConns, picked at random, with BYE
// "too many peers". It happens when a mesh grows past FullMeshUpTo: its
// first members hold a connection to each of the others, which the
// partial mesh no longer wants. Their members dial others to refill their
// own active views.
func (n *Node) trimExcess() {
	n.mu.Lock()
	live := slices.DeleteFunc(n.livePeersLocked(), n.pinnedLocked)
	drop := live[:max(0, len(live)-n.maxConnsLocked())]
	n.mu.Unlock()
	for _, p := range drop {
		p.log.Debug("connection closed: the partial mesh keeps fewer")
		p.bye(reasonTooManyPeers, nil)
	}
}

// livePeersLocked lists the connections not closing already, in random
// (map) order (mu held).
func (n *Node) livePeersLocked() []*peer {
	live := make([]*peer, 0, len(n.peers))
	for _, p := range n.peers {
		if p.byeCause.Load() == nil {
			live = append(live, p)
		}
	}
	return live
}

// evictForLocked picks a connection to close so that p, a member that
// dialed this node while it has maxConns connections, gets in (mu held).
// As in HyParView, a full node makes room rather than refusing: members
// that joined when the mesh was small hold connections to each other up
// to the cap, and refusing would leave later members nobody to connect
// to. The member whose connection goes dials another if it needs one.
// In a full mesh, or for a connection this node dialed, nil: refuse.
func (n *Node) evictForLocked(p *peer) *peer {
	if p.outbound || !n.partialLocked() {
		return nil
	}
	for _, q := range n.livePeersLocked() {
		if q.id != p.id && !n.pinnedLocked(q) {
			return q
		}
	}
	return nil
}
