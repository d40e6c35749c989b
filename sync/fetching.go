package sync

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

// FETCHING, both ends. A receiver that takes a file from members other
// than its author tells the author whom it takes it from and how far it
// is; the author shows that as the member's delivery state ("fetching from
// bob, carol 45%") while it does not send the file itself. Only words
// change: nothing is decided on a FETCHING, so a member that lies in one
// misleads a display and nothing else.

// fetchingGap is the least time between two FETCHINGs about one transfer
// whose members did not change: a display needs no more.
const fetchingGap = time.Second

// fetchingFresh is how long the author shows what a FETCHING said: a
// receiver that went away stops sending them, and the delivery falls back
// to its own state.
const fetchingFresh = 30 * time.Second

// maxFetchNotices bounds the transfers whose last FETCHING is remembered;
// past it, those quiet for fetchingFresh are forgotten.
const maxFetchNotices = 4096

// fetchNotices is the receiving side's memory of the FETCHING last sent
// per transfer, for the rate limit. It has its own lock: tellFetching is
// called with inbound.mu not held, from any receiver.
type fetchNotices struct {
	mu   sync.Mutex
	last map[inKey]fetchNotice // guarded by mu
}

// fetchNotice is one FETCHING sent: to which members, and when.
type fetchNotice struct {
	from []mesh.PeerID
	at   time.Time
}

// due reports whether a FETCHING naming from may go about k now, and if
// so notes it as sent: the first one, one whose members changed, or one a
// fetchingGap after the last.
func (n *fetchNotices) due(k inKey, from []mesh.PeerID, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	last, ok := n.last[k]
	if ok && slices.Equal(last.from, from) && now.Sub(last.at) < fetchingGap {
		return false
	}
	if n.last == nil {
		n.last = map[inKey]fetchNotice{}
	}
	if len(n.last) >= maxFetchNotices {
		for key, l := range n.last {
			if now.Sub(l.at) > fetchingFresh {
				delete(n.last, key)
			}
		}
	}
	n.last[k] = fetchNotice{from: slices.Clone(from), at: now}
	return true
}

// forget drops k's rate state.
func (n *fetchNotices) forget(k inKey) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.last, k)
}

// tellFetching tells the author of transfer k that this member takes the
// file from the members in from now (none: it waits for one) and holds
// have of its blocks. It is called, with ib.mu not held, whenever those
// members change and after each window of blocks; notices closer than
// fetchingGap with the same members are not sent. Only a connected author
// speaking this protocol is told, and a failed send is only logged: the
// notice is for display.
func (ib *inbound) tellFetching(k inKey, from []mesh.PeerID, have, blocks int) {
	t := ib.transport()
	if t == nil || k.peer == t.ID() {
		return
	}
	p := ib.peers.get(k.peer)
	if p == nil || !p.speaksOurs() {
		return // the author is not connected, or would not understand
	}
	m, err := newFetchingMsg(k, from, have, blocks)
	if err != nil {
		ib.log.Debug("fetching notice not sent", "peer", k.peer, "id", k.id.String(), "err", err)
		return
	}
	if !ib.fetchSent.due(k, m.From, time.Now()) {
		return
	}
	if err := t.SendBytes(p.ctx, k.peer, m.encode()); err != nil {
		ib.log.Debug("fetching notice not sent", "peer", k.peer, "id", k.id.String(), "err", err)
	}
}

// forgetFetching drops the rate state of transfer k, which completed or
// was dropped.
func (ib *inbound) forgetFetching(k inKey) { ib.fetchSent.forget(k) }

// newFetchingMsg builds the FETCHING about k, refusing what the author's
// decoder would drop.
func newFetchingMsg(k inKey, from []mesh.PeerID, have, blocks int) (*fetchingMsg, error) {
	switch {
	case len(from) > maxFetchSources:
		return nil, fmt.Errorf("%d members, at most %d", len(from), maxFetchSources)
	case blocks < 0 || blocks > maxBlocks || have < 0 || have > blocks:
		return nil, fmt.Errorf("%d of %d blocks", have, blocks)
	}
	return &fetchingMsg{Author: k.peer, ID: k.id, Have: uint32(have), Blocks: uint32(blocks), From: from}, nil
}

// speaksOurs reports whether the peer's HELLO said it speaks Version.
func (p *peerConn) speaksOurs() bool {
	select {
	case <-p.hello:
		return true
	default:
		return false
	}
}

// fetchNote is what a member's last FETCHING said, as the author shows it.
// In memory only, on the member's delivery, guarded by outbound.mu.
type fetchNote struct {
	from   string // display names of the members it takes the file from ("bob, carol"); "": waiting
	have   uint32
	blocks uint32
	at     time.Time // when it came
}

// shown reports whether the note says what the member does now: it takes
// the file from some member, and said so lately.
func (n *fetchNote) shown(now time.Time) bool {
	return len(n.from) > 0 && now.Sub(n.at) < fetchingFresh
}

// text is "fetching from bob, carol 45%"; 100% is only ever "verified".
func (n *fetchNote) text() string {
	pct := uint32(0)
	if n.blocks > 0 {
		pct = min(n.have*100/n.blocks, 99) // have <= blocks <= maxBlocks: no overflow
	}
	return fmt.Sprintf("fetching from %s %d%%", n.from, pct)
}

// done is how many bytes of a file of size the member holds, as the note says.
func (n *fetchNote) done(size int64) int64 {
	if n.blocks == 0 {
		return 0
	}
	return size * int64(n.have) / int64(n.blocks)
}

// onFetching applies a FETCHING on the mesh reader's goroutine: it only
// sets a note on one delivery under outbound.mu, without I/O, so no
// goroutine or queue is needed.
func (e *Engine) onFetching(from mesh.PeerID, data []byte) {
	if p := e.peers.get(from); p != nil && p.problem() != "" {
		e.log.Debug("message dropped", "peer", from, "why", p.problem())
		return
	}
	msg, err := decodeMessage(data)
	if err != nil {
		e.log.Debug("bad message", "peer", from, "err", err)
		return
	}
	e.out.noteFetching(from, msg.(*fetchingMsg))
}

// noteFetching takes a FETCHING from member from. It reads no disk and
// holds o.mu only to set the note, so the mesh reader may call it.
func (o *outbound) noteFetching(from mesh.PeerID, m *fetchingMsg) {
	names := o.peers.namesOf(m.From) // before o.mu: one lock at a time
	note := fetchNote{from: names, have: m.Have, blocks: m.Blocks, at: time.Now()}
	if why := o.setFetching(from, m, note); why != "" {
		o.log.Debug("fetching notice ignored", "peer", from, "id", m.ID.String(), "why", why)
	}
}

// setFetching puts note on from's delivery of our file m names, or says
// why not.
func (o *outbound) setFetching(from mesh.PeerID, m *fetchingMsg, note fetchNote) (why string) {
	if m.Author != o.transport().ID() {
		return "not our file"
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	rec := o.records[m.ID]
	if rec == nil || rec.relay() {
		return "no such file of ours"
	}
	d := rec.Peers[from.String()]
	switch {
	case d == nil:
		return "no delivery to that member"
	case d.State == StateVerified:
		return "already delivered"
	}
	d.fetch = note
	return ""
}

// clearFetched forgets the notes of rec's verified deliveries (o.mu held).
func clearFetched(rec *outRecord) {
	for _, d := range rec.Peers {
		if d.State == StateVerified {
			d.fetch = fetchNote{}
		}
	}
}
