package sync

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

// A file whose signed manifest is known here comes from every member that
// offers it, at once: each such member is a source of the transfer, and
// is asked for its own windows of the blocks still missing (an ACCEPT
// whose bitmap holds every block but the window's). A source that sends
// fast finishes its windows sooner and is asked for more, so the blocks
// come from each member about as fast as it can send them. Each block is
// checked against the manifest whoever sent it; a window that comes back
// without some of its blocks (damaged, or the sender lost them) puts them
// back, to be asked of another source first.
//
// A file offered before its manifest is complete (streamed, send.go)
// comes from its one source, asked for every missing block at once: its
// blocks can only be checked when DONE brings the manifest.
//
// A source can stall: a member passing a file on while it comes in
// (relay.go) sends each block once it holds it, so one whose own source
// stopped, or a ring of such members each waiting on the next, sends
// nothing while it keeps its windows. A source that sent no block for
// Config.SourceStall, or four times its usual gap between blocks (a slow
// uplink is not a stall), gives its blocks back to the other sources,
// and lets in any member that offers the file, the author included,
// instead of holding the transfer until InboundIdle.

// A window asks for about Config.FetchWindow bytes (16 MiB): enough that
// the DONE and ACCEPT between two windows cost little, little enough that
// a second source soon finds blocks nobody is asked for.

// maxWindows is how many windows a source is asked for at once: the next
// is asked while it sends the one before, so it never waits for a round
// trip.
const maxWindows = 2

// source is one member sending blocks of an inbound transfer, on its
// connection's receiver. Its fields but open are guarded by inbound.mu;
// open is its receiver's alone.
type source struct {
	p *peerConn
	// sendMu keeps the ACCEPTs of its windows in the order of windows:
	// its DONEs end them in that order.
	sendMu  sync.Mutex
	windows []bitmap // blocks asked for, oldest first; each ends with a DONE
	whole   bool     // asked for every missing block at once (streamed)
	missed  bitmap   // blocks its windows came back without
	misses  int      // windows it ended incomplete
	open    []*openBlock
	// last is when s last sent a block, or was given blocks while it
	// owed none; gap is its usual time between blocks (a moving average).
	last time.Time
	gap  time.Duration
}

// noteBlock records a block, or a piece of one, from s at now.
func (s *source) noteBlock(now time.Time) {
	d := now.Sub(s.last)
	if s.gap == 0 {
		s.gap = d
	} else {
		s.gap = (3*s.gap + d) / 4
	}
	s.last = now
}

// idle reports whether s is asked for blocks in windows but has none now:
// every missing block is asked of other sources.
func (s *source) idle() bool { return !s.whole && len(s.windows) == 0 }

// asks reports whether block i was asked of s and not yet ended.
func (s *source) asks(i int) bool {
	if s.whole {
		return true
	}
	for _, w := range s.windows {
		if w.has(i) {
			return true
		}
	}
	return false
}

// windowed reports whether t is asked for in windows, from any number of
// sources: its manifest is known.
func (t *inTransfer) windowed() bool { return !t.meta.streamed() }

// addSourceLocked makes p a source of t. A streamed transfer takes one.
// One that others send already takes p too only if p holds the file
// whole (its receipt is known here): a member still receiving it (relay.go)
// is told busy, and passes it on to a member that gets it from nobody
// yet; and the author, who signs no receipt, leaves its uplink to the
// members that need it, so each block leaves it about once. When no
// source can send anything more (stuckLocked), p is taken whoever it is,
// and the blocks the stalled ones owe are asked of it.
func (t *inTransfer) addSourceLocked(p *peerConn, holder bool, now time.Time, stall time.Duration) (*source, bool) {
	if s := t.sources[p]; s != nil {
		return s, true
	}
	stuck := t.stuckLocked(now, stall)
	if t.finishing || len(t.sources) > 0 && (!t.windowed() || t.wholeLocked() || !holder && !stuck) {
		return nil, false
	}
	if stuck {
		for _, o := range t.sources {
			t.releaseLocked(o)
		}
	}
	s := &source{p: p, whole: !t.windowed(), missed: newBitmap(t.meta.blocks()), last: now}
	t.sources[p] = s
	return s, true
}

// silent reports whether s sent no block for stall, or for four times
// its usual gap between blocks.
func (s *source) silent(now time.Time, stall time.Duration) bool {
	return now.Sub(s.last) > max(stall, 4*s.gap)
}

// stalledLocked reports whether s owes blocks of windows and is silent.
func (t *inTransfer) stalledLocked(s *source, now time.Time, stall time.Duration) bool {
	return !s.whole && t.owesLocked(s) && s.silent(now, stall)
}

// canTakeLocked reports whether s can send blocks asked of it now: it is
// sending its windows and has not stalled, or it has no window and is
// given the next blocks that come back (askIdle). A source whose windows
// were taken back waits for their DONEs and can take none.
func (t *inTransfer) canTakeLocked(s *source, now time.Time, stall time.Duration) bool {
	return s.whole || s.idle() || t.owesLocked(s) && !s.silent(now, stall)
}

// stuckLocked reports whether t has sources and none can take blocks.
func (t *inTransfer) stuckLocked(now time.Time, stall time.Duration) bool {
	for _, s := range t.sources {
		if t.canTakeLocked(s, now, stall) {
			return false
		}
	}
	return len(t.sources) > 0
}

// owesLocked reports whether a block asked of s in a window is missing.
func (t *inTransfer) owesLocked(s *source) bool {
	for _, w := range s.windows {
		for i := range w.n {
			if w.has(i) && !t.have.has(i) {
				return true
			}
		}
	}
	return false
}

// releaseLocked takes back the blocks of s's windows, to be asked of the
// other sources first. The windows stay, emptied, so that s's DONEs still
// end them in order; a block s sends later is not asked of it any more
// and is dropped.
func (t *inTransfer) releaseLocked(s *source) {
	for _, w := range s.windows {
		for i := range w.n {
			if !w.has(i) {
				continue
			}
			w.clear(i)
			t.asked.clear(i)
			if !t.have.has(i) {
				s.missed.set(i)
			}
		}
	}
}

// wholeLocked reports whether a source of t is asked for every block.
func (t *inTransfer) wholeLocked() bool {
	for _, s := range t.sources {
		if s.whole {
			return true
		}
	}
	return false
}

// endWindowsLocked ends s's n oldest windows and returns how many of
// their blocks are still missing: they can be asked for again, of
// another source first if missed (a window came back without them).
func (t *inTransfer) endWindowsLocked(s *source, n int, missed bool) int {
	missing := 0
	for _, w := range s.windows[:n] {
		for i := range w.n {
			if !w.has(i) {
				continue
			}
			t.asked.clear(i)
			if !t.have.has(i) {
				missing++
				if missed {
					s.missed.set(i)
				}
			}
		}
	}
	s.windows = slices.Delete(s.windows, 0, n)
	return missing
}

// nextWindowLocked picks the next window for s: missing blocks nobody is
// asked for, lowest first, up to window bytes. A block s's windows came
// back without is left to the other sources while there are any.
func (t *inTransfer) nextWindowLocked(s *source, window int) (bitmap, bool) {
	n := t.meta.blocks()
	limit := max(window/int(t.meta.BlockSize), 1)
	alone := len(t.sources) == 1
	var w bitmap
	taken := 0
	for i := 0; i < n && taken < limit; i++ {
		if t.have.has(i) || t.asked.has(i) || s.missed.has(i) && !alone {
			continue
		}
		if taken == 0 {
			w = newBitmap(n)
		}
		w.set(i)
		t.asked.set(i)
		taken++
	}
	return w, taken > 0
}

// stealLocked gives s, which has nothing to send, the blocks of the
// newest window of a source that has two: that source's sender sends its
// windows in order and is still on the older one, so the file's last
// blocks come from the member that is free now instead of queueing behind
// a slower one. The window stays in the other source's list, emptied of
// them, so its DONE still ends it; a chunk of them it sent already is not
// asked of it any more and is dropped. Only while the older window is at
// most half done: near its end, its DONE may be on its way and the newer
// one begun, whose blocks would then come twice.
func (t *inTransfer) stealLocked(s *source) (bitmap, bool) {
	alone := len(t.sources) == 1
	for _, o := range t.sources {
		if o == s || o.whole || len(o.windows) < maxWindows || !t.underwayLocked(o.windows[0]) {
			continue
		}
		from := o.windows[len(o.windows)-1]
		w, n := newBitmap(from.n), 0
		for i := range from.n {
			if from.has(i) && !t.have.has(i) && (alone || !s.missed.has(i)) {
				from.clear(i)
				w.set(i)
				n++
			}
		}
		if n > 0 {
			return w, true
		}
	}
	return bitmap{}, false
}

// underwayLocked reports whether at least half of w's blocks are still
// missing.
func (t *inTransfer) underwayLocked(w bitmap) bool {
	asked, missing := 0, 0
	for i := range w.n {
		if w.has(i) {
			asked++
			if !t.have.has(i) {
				missing++
			}
		}
	}
	return 2*missing >= asked
}

// acceptFor is the ACCEPT that asks for exactly the blocks of w.
func acceptFor(id transferID, w bitmap) *acceptMsg {
	have := newBitmap(w.n)
	for i := range w.n {
		if !w.has(i) {
			have.set(i)
		}
	}
	return &acceptMsg{ID: id, Have: have}
}

// ask tops s up to maxWindows windows of t, each sent as an ACCEPT. It
// may be called from any receiver: s.sendMu keeps the order.
func (ib *inbound) ask(t *inTransfer, s *source) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	var asks []*acceptMsg
	ib.mu.Lock()
	for len(s.windows) < maxWindows && ib.transfers[t.key] == t && t.sources[s.p] == s && !t.finishing {
		w, ok := t.nextWindowLocked(s, ib.cfg.FetchWindow)
		if !ok && len(s.windows) == 0 {
			w, ok = t.stealLocked(s)
		}
		if !ok {
			break
		}
		if !t.owesLocked(s) {
			s.last = time.Now() // it waited for nothing until now
		}
		s.windows = append(s.windows, w)
		asks = append(asks, acceptFor(t.key.id, w))
	}
	ib.mu.Unlock()
	for i, m := range asks {
		if err := ib.sendTo(s, m.encode()); err != nil {
			ib.log.Debug("accept not sent", "peer", s.p.id, "err", err)
			ib.mu.Lock()
			t.dropNewestLocked(s, len(asks)-i) // never asked: another source may have them
			ib.mu.Unlock()
			return
		}
	}
}

// sourceSendTimeout bounds a message to a source sent from another
// connection's receiver: a member whose link stalls must not hold up the
// others' transfers until it is declared gone.
const sourceSendTimeout = 10 * time.Second

// sendTo sends a control message to source s within sourceSendTimeout.
func (ib *inbound) sendTo(s *source, msg []byte) error {
	if err := s.p.ctx.Err(); err != nil {
		return err // its connection ended (see receiver.reply)
	}
	ctx, cancel := context.WithTimeout(s.p.ctx, sourceSendTimeout)
	defer cancel()
	return ib.transport().SendBytes(ctx, s.p.id, msg)
}

// dropNewestLocked forgets s's k newest windows, which were not sent.
func (t *inTransfer) dropNewestLocked(s *source, k int) {
	k = min(k, len(s.windows))
	for _, w := range s.windows[len(s.windows)-k:] {
		for i := range w.n {
			if w.has(i) {
				t.asked.clear(i)
			}
		}
	}
	s.windows = s.windows[:len(s.windows)-k]
}

// keepAlive asks s, which has no window (the other sources are asked for
// every missing block), for an empty one: its sender answers DONE at once,
// and does not take a source waiting for blocks to come back for a member
// that stopped answering. The receiver's tick calls it, more often than a
// sender gives up on silence (offerTimeout).
func (ib *inbound) keepAlive(t *inTransfer, s *source) {
	ib.ask(t, s) // blocks may have come back, or be taken from a slower source
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	ib.mu.Lock()
	idle := ib.transfers[t.key] == t && t.sources[s.p] == s && s.idle() && !t.finishing
	var empty bitmap
	if idle {
		empty = newBitmap(t.meta.blocks())
		s.windows = append(s.windows, empty)
	}
	ib.mu.Unlock()
	if !idle {
		return
	}
	if err := ib.sendTo(s, acceptFor(t.key.id, empty).encode()); err != nil {
		ib.log.Debug("accept not sent", "peer", s.p.id, "err", err)
		ib.mu.Lock()
		t.dropNewestLocked(s, 1)
		ib.mu.Unlock()
	}
}

// othersCanTakeLocked reports whether a source of t but s can take
// blocks (canTakeLocked).
func (t *inTransfer) othersCanTakeLocked(s *source, now time.Time, stall time.Duration) bool {
	for _, o := range t.sources {
		if o != s && t.canTakeLocked(o, now, stall) {
			return true
		}
	}
	return false
}

// unstall takes back the blocks asked of p wherever p has stalled as a
// source and another source can take them: they are asked of it now.
func (ib *inbound) unstall(p *peerConn, now time.Time) {
	ib.mu.Lock()
	var freed []*inTransfer
	for _, t := range ib.transfers {
		s := t.sources[p]
		if s == nil || !t.stalledLocked(s, now, ib.cfg.SourceStall) || !t.othersCanTakeLocked(s, now, ib.cfg.SourceStall) {
			continue
		}
		t.releaseLocked(s)
		freed = append(freed, t)
	}
	ib.mu.Unlock()
	for _, t := range freed {
		ib.log.Debug("stalled source's blocks asked of others", "peer", p.id, "path", t.meta.Path)
		ib.askIdle(t)
	}
}

// idleSources returns the transfers p is an idle source of (keepAlive).
func (ib *inbound) idleSources(p *peerConn) map[*inTransfer]*source {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	out := map[*inTransfer]*source{}
	for _, t := range ib.transfers {
		if s := t.sources[p]; s != nil && s.idle() {
			out[t] = s
		}
	}
	return out
}

// askIdle gives windows to t's sources that have none: blocks came back
// to be asked for again, or a source left with its windows.
func (ib *inbound) askIdle(t *inTransfer) {
	ib.mu.Lock()
	var idle []*source
	for _, s := range t.sources {
		if s.idle() {
			idle = append(idle, s)
		}
	}
	ib.mu.Unlock()
	for _, s := range idle {
		ib.ask(t, s)
	}
}

// restartSource forgets what s was asked for: its member offered the file
// again, so its sender starts over and ends no earlier window.
func (ib *inbound) restartSource(t *inTransfer, s *source) {
	ib.mu.Lock()
	t.endWindowsLocked(s, len(s.windows), false)
	ib.mu.Unlock()
}

// removeSourceLocked detaches p from t, putting back what it was asked
// for; the partial's files close with its last source. It reports whether
// p was one and t still has sources that may take its blocks.
func (t *inTransfer) removeSourceLocked(p *peerConn) (was, others bool) {
	s := t.sources[p]
	if s == nil {
		return false, false
	}
	t.endWindowsLocked(s, len(s.windows), false)
	delete(t.sources, p)
	if len(t.sources) == 0 {
		t.closeFile()
	}
	return true, len(t.sources) > 0
}

// sourceIDsLocked lists the members t is coming from now, sorted by ID.
func (t *inTransfer) sourceIDsLocked() []mesh.PeerID {
	ids := make([]mesh.PeerID, 0, len(t.sources))
	for p := range t.sources {
		ids = append(ids, p.id)
	}
	slices.SortFunc(ids, func(a, b mesh.PeerID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// sourcesOf returns t's sources (ib.mu not held).
func (ib *inbound) sourcesOf(t *inTransfer) []*source {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	out := make([]*source, 0, len(t.sources))
	for _, s := range t.sources {
		out = append(out, s)
	}
	return out
}

// tellAll sends msg to every source of t but skip: the transfer ended for
// all of them (ACK, or REJECT when it failed).
func (ib *inbound) tellAll(srcs []*source, skip *peerConn, msg []byte) {
	for _, s := range srcs {
		if s.p == skip {
			continue
		}
		if err := ib.sendTo(s, msg); err != nil {
			ib.log.Debug("reply not sent", "peer", s.p.id, "err", err)
		}
	}
}

// tellSources tells t's author which members t comes from now, and how
// far it is (fetching.go), unless the author sends it itself: it knows.
func (ib *inbound) tellSources(t *inTransfer) {
	ib.mu.Lock()
	ids, have, n := t.sourceIDsLocked(), t.have.count(), t.have.n
	ib.mu.Unlock()
	if slices.Contains(ids, t.key.peer) {
		return
	}
	ib.tellFetching(t.key, ids, have, n)
}

// tellAuthor tells a member that just greeted this one where each of its
// files coming in here from others stands: an author back online shows
// it at once, not after the next window.
func (ib *inbound) tellAuthor(id mesh.PeerID) {
	ib.mu.Lock()
	var ts []*inTransfer
	for k, t := range ib.transfers {
		if k.peer == id && len(t.sources) > 0 {
			ts = append(ts, t)
		}
	}
	ib.mu.Unlock()
	for _, t := range ts {
		ib.tellSources(t)
	}
}
