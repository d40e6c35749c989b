package sync

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/meshfs/meshfs/chat"
	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// The room spreads chat lines like an epidemic. Every line is a record
// signed by its author (package record), so a member passes on what it
// holds to members who lack it, whoever wrote it, and the receiver checks
// the author's signature before keeping it: a member that alters a line it
// passes on is found out and named, and the line comes again from another.
//
//   - A new line goes to every member connected; a member that takes a
//     line it did not have passes it on to every member it is connected
//     to, but the one it came from and the author. So a line reaches
//     members its author cannot reach, through any member between them.
//   - When two members connect (and, every AntiEntropy, with one member
//     at random) each sends HAVE, what it holds per author; the other
//     answers with RECORDS of all it holds beyond that. A member away for
//     a week gets every line said meanwhile from whichever member is up.
//   - A member takes each author's records in order only: one that comes
//     before an earlier one (two paths, one slower) waits here until the
//     gap is filled, and the member asks for what it lacks. So each line
//     shows once, and each author's lines in the order written.
//
// One goroutine, the room loop, owns this state; it also writes received
// lines and event lines to the store (chat.Store), whose syncs a second
// goroutine does lazily.

// roomJob is work for the room loop.
type roomJob struct {
	from    mesh.PeerID
	msg     any             // *haveMsg, *recordsMsg or *receiptsMsg received from 'from'
	ready   bool            // from greeted us with this protocol: exchange vectors
	gone    bool            // from disconnected
	event   string          // an event line for the log
	receipt *record.Receipt // our own new receipt, signed
}

const (
	// maxPendingRecords bounds the records held for a gap. Past it they
	// are dropped: asking again brings them back in order.
	maxPendingRecords = 4096
	// maxAnswerRecords bounds one answer to HAVE; RECORDS says "more".
	maxAnswerRecords = 2048
	// askGap is how often a gap makes a member ask the same peer again.
	askGap = time.Second
	// roomSendTimeout bounds a send to one member, so a member whose queue
	// stays full cannot stop the room for everyone.
	roomSendTimeout = 10 * time.Second
)

// room is the room loop's state.
type room struct {
	e       *Engine
	ready   map[mesh.PeerID]bool                   // members that speak this protocol, connected
	pending map[mesh.PeerID]map[uint64]record.Chat // author -> seq -> record waiting for a gap
	held    int                                    // records in pending
	asked   map[mesh.PeerID]time.Time              // when we last sent HAVE to a member
	later   map[mesh.PeerID]bool                   // members to ask once askGap has passed (askDue)
	dirty   chan struct{}                          // the store was written: sync it soon
}

// toRoom hands work to the room loop, blocking while it is busy: a member
// that floods it waits (back-pressure on its connection).
func (e *Engine) toRoom(j roomJob) {
	select {
	case e.roomIn <- j:
	case <-e.ctx.Done():
	}
}

// roomLoop runs the room until the engine stops.
func (e *Engine) roomLoop() {
	r := &room{e: e, ready: map[mesh.PeerID]bool{}, pending: map[mesh.PeerID]map[uint64]record.Chat{},
		asked: map[mesh.PeerID]time.Time{}, later: map[mesh.PeerID]bool{}, dirty: make(chan struct{}, 1)}
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		e.chatSyncLoop(r.dirty)
	}()
	defer func() { <-synced }()
	round := time.NewTimer(e.cfg.AntiEntropy)
	defer round.Stop()
	due := time.NewTimer(askGap)
	defer due.Stop()
	for {
		due.Reset(askGap)
		if len(r.later) == 0 {
			due.Stop() // nothing deferred: no wake-up while idle
		}
		select {
		case <-e.ctx.Done():
			return
		case j := <-e.roomIn:
			r.do(j)
		case <-e.own.signal:
			for _, m := range e.own.take() {
				r.spread(m, mesh.PeerID{})
			}
		case <-round.C:
			r.round()
			round.Reset(e.cfg.AntiEntropy)
		case <-due.C:
			r.askDue()
		}
	}
}

func (r *room) do(j roomJob) {
	if j.msg != nil && !r.ready[j.from] {
		// Its HAVE, RECORDS or RECEIPTS say it speaks this protocol, maybe
		// before its HELLO reached us: a line taken meanwhile must reach it.
		r.ready[j.from] = true
	}
	switch m := j.msg.(type) {
	case *haveMsg:
		r.answer(j.from, m.Vector)
		return
	case *recordsMsg:
		r.take(j.from, m)
		return
	case *receiptsMsg:
		r.takeReceipts(j.from, m.Receipts)
		return
	}
	switch {
	case j.event != "":
		if err := r.e.chat.Event(j.event); err != nil {
			r.e.log.Warn("chat event not stored", "err", err, "fix", fixState)
		}
		r.stored()
	case j.receipt != nil:
		r.takeReceipts(r.e.transport().ID(), []record.Receipt{*j.receipt})
	case j.ready:
		r.ready[j.from] = true
		r.sendHave(j.from)
		r.sendReceipts(j.from, r.e.receipts.all())
	case j.gone:
		delete(r.ready, j.from)
		delete(r.asked, j.from)
		delete(r.later, j.from)
	}
}

// stored wakes the lazy syncer.
func (r *room) stored() {
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

// take checks and keeps the records a member sent, passing on the new.
func (r *room) take(from mesh.PeerID, m *recordsMsg) {
	gap := false
	for _, c := range m.Records {
		if r.verified(from, c) && r.accept(from, c) == chat.Gap {
			r.hold(c)
			gap = true
		}
	}
	if m.More {
		r.sendHave(from)
	} else if gap {
		r.ask(from)
	}
}

// verified checks a record's signature against its author's certified key.
// A record that fails is dropped and the member that sent it is named: an
// honest member passes records on unchanged.
func (r *room) verified(from mesh.PeerID, c record.Chat) bool {
	err := c.VerifyWith(r.e.transport())
	switch {
	case err == nil:
		return true
	case errors.Is(err, mesh.ErrUnknownMember):
		// Its certificate has not reached us yet (discovery brings it);
		// the record comes again at the next HAVE.
		r.e.log.Debug("chat record of an unknown author", "peer", from, "author", c.Author)
	case errors.Is(err, mesh.ErrRevoked):
		r.e.log.Info("chat record of a removed member refused", "peer", from, "author", c.Author, "seq", c.Seq)
	default:
		r.e.bad.add(from)
		r.e.log.Warn("chat record does not verify; dropped", "peer", from, "member", r.e.peers.displayName(from),
			"author", r.authorName(c.Author), "seq", c.Seq, "err", err,
			"fix", "the member that sent it altered it or is broken: if it goes on, remove it with 'meshfs remove'")
	}
	return false
}

// accept stores a verified record if it is its author's next one, passes
// it on, and takes the records that waited for it.
func (r *room) accept(from mesh.PeerID, c record.Chat) chat.Outcome {
	out, err := r.e.chat.Accept(c, r.authorName(c.Author))
	if err != nil {
		r.e.log.Warn("chat line not stored", "peer", from, "author", c.Author, "err", err, "fix", fixState)
		return out
	}
	if out != chat.Added {
		return out
	}
	r.stored()
	r.spread(c, from)
	if c.Private() {
		r.e.openReceived(c, from, r.authorName(c.Author))
	}
	if next, ok := r.unhold(c.Author, c.Seq+1); ok {
		r.accept(from, next)
	}
	return out
}

// hold keeps a record that came before an earlier one of its author.
func (r *room) hold(c record.Chat) {
	if r.held >= maxPendingRecords {
		r.e.log.Debug("records waiting for a gap dropped; they are asked for again", "count", r.held)
		clear(r.pending)
		r.held = 0
	}
	byseq := r.pending[c.Author]
	if byseq == nil {
		byseq = map[uint64]record.Chat{}
		r.pending[c.Author] = byseq
	}
	if _, dup := byseq[c.Seq]; !dup {
		r.held++
	}
	byseq[c.Seq] = c
}

// unhold takes author's record seq out of pending, dropping the ones
// before it (already held by now).
func (r *room) unhold(author mesh.PeerID, seq uint64) (record.Chat, bool) {
	byseq := r.pending[author]
	if byseq == nil {
		return record.Chat{}, false
	}
	for s := range byseq {
		if s < seq {
			delete(byseq, s)
			r.held--
		}
	}
	c, ok := byseq[seq]
	if ok {
		delete(byseq, seq)
		r.held--
	}
	if len(byseq) == 0 {
		delete(r.pending, author)
	}
	return c, ok
}

// spread sends a record to every member that speaks this protocol, but
// the one it came from and its author.
func (r *room) spread(c record.Chat, from mesh.PeerID) {
	var data []byte
	for id := range r.ready {
		if id == from || id == c.Author {
			continue
		}
		if data == nil {
			data = (&recordsMsg{Records: []record.Chat{r.passOn(c)}}).encode()
		}
		r.send(id, data)
	}
}

// passOn is the record as this member passes it on: unchanged, unless a
// test build lies on purpose (failpoint.go).
func (r *room) passOn(c record.Chat) record.Chat {
	if failLie && c.Author != r.e.transport().ID() {
		if c.Private() {
			c.Sealed = append(bytes.Clone(c.Sealed[:len(c.Sealed)-1]), c.Sealed[len(c.Sealed)-1]^1)
		} else {
			c.Text += " (altered)"
		}
	}
	return c
}

// answer sends a member every record we hold beyond its vector, each
// author's in order and the authors merged by Lamport clock, so a reply
// tends to come after what it answers.
func (r *room) answer(from mesh.PeerID, theirs record.Vector) {
	mine := r.e.chat.Vector()
	var lists [][]record.Chat
	budget, more := maxAnswerRecords, false
	for author, after := range theirs.Lacks(mine) {
		if budget == 0 {
			more = true
			break
		}
		recs, err := r.e.chat.After(author, after, budget)
		if err != nil {
			r.e.log.Warn("chat history not read", "err", err, "fix", fixState)
		}
		if len(recs) == budget && after+uint64(len(recs)) < mine[author] {
			more = true
		}
		budget -= len(recs)
		lists = append(lists, recs)
	}
	r.sendRecords(from, mergeByLamport(lists), more)
	if len(mine.Lacks(theirs)) > 0 {
		r.ask(from) // it holds what we lack
	}
}

// sendRecords packs records into RECORDS messages, the last saying more.
func (r *room) sendRecords(to mesh.PeerID, recs []record.Chat, more bool) {
	var batch []record.Chat
	size := 0
	for i, c := range recs {
		c = r.passOn(c)
		batch = append(batch, c)
		size += len(c.Text) + len(c.Sealed) + 256
		last := i == len(recs)-1
		if last || len(batch) == maxRecordsPerMsg || size >= recordsMsgBytes {
			r.send(to, (&recordsMsg{Records: batch, More: more && last}).encode())
			batch, size = nil, 0
		}
	}
}

// mergeByLamport merges per-author lists (each in order) into one, taking
// next the head with the lowest Lamport clock. Each author's order stays.
func mergeByLamport(lists [][]record.Chat) []record.Chat {
	var out []record.Chat
	for {
		best := -1
		for i, l := range lists {
			if len(l) > 0 && (best < 0 || cmp.Compare(l[0].Lamport, lists[best][0].Lamport) < 0) {
				best = i
			}
		}
		if best < 0 {
			return out
		}
		out = append(out, lists[best][0])
		lists[best] = lists[best][1:]
	}
}

// ask sends a member HAVE now, or once askGap has passed since the last
// one: at most one a second for a gap or an answer, so two members never
// ping-pong (a record that cannot be taken yet, of an author not known
// here, is asked for again only that often), and never forgotten.
func (r *room) ask(id mesh.PeerID) {
	if time.Since(r.asked[id]) >= askGap {
		r.sendHave(id)
		return
	}
	r.later[id] = true
}

// askDue sends the HAVEs ask deferred whose gap has passed.
func (r *room) askDue() {
	for id := range r.later {
		if time.Since(r.asked[id]) >= askGap {
			delete(r.later, id)
			if r.ready[id] {
				r.sendHave(id)
			}
		}
	}
}

// sendHave tells a member what we hold; it answers with what we lack.
func (r *room) sendHave(id mesh.PeerID) {
	r.asked[id] = time.Now()
	delete(r.later, id)
	r.send(id, (&haveMsg{Vector: r.e.chat.Vector()}).encode())
}

// round exchanges vectors with one member at random: a line that was lost
// on its way (a connection that broke under it) arrives within a round.
func (r *room) round() {
	ids := make([]mesh.PeerID, 0, len(r.ready))
	for id := range r.ready {
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return
	}
	r.sendHave(ids[rand.IntN(len(ids))])
}

func (r *room) send(to mesh.PeerID, data []byte) {
	ctx, cancel := context.WithTimeout(r.e.ctx, roomSendTimeout)
	defer cancel()
	if err := r.e.transport().SendBytes(ctx, to, data); err != nil {
		r.e.log.Debug("room message not sent; the next HAVE makes up for it", "peer", to, "err", err)
	}
}

// authorName is an author's display name: from the peers this engine saw,
// else from the member list (an author we never met directly).
func (r *room) authorName(id mesh.PeerID) string {
	if n, ok := r.e.peers.name(id); ok {
		return n
	}
	for _, p := range r.e.transport().Peers() {
		if p.ID == id {
			r.e.peers.noteName(p)
			return r.e.peers.displayName(id)
		}
	}
	return id.Short()
}

// takeReceipts keeps the receipts from a member (or our own) that are new
// and verify against their receiver's key, applies them to our deliveries
// and passes them on to every other member.
func (r *room) takeReceipts(from mesh.PeerID, rs []record.Receipt) {
	var fresh []record.Receipt
	for _, rc := range rs {
		if r.e.receipts.has(keyOf(rc), rc.Receiver) || !r.receiptVerified(from, rc) {
			continue
		}
		isNew, err := r.e.receipts.add(rc)
		if err != nil {
			r.e.log.Warn("receipt not recorded", "err", err, "fix", fixState)
		}
		if isNew {
			fresh = append(fresh, rc)
			r.e.out.noteReceipt(keyOf(rc), rc.Receiver)
		}
	}
	for id := range r.ready {
		if id != from {
			r.sendReceipts(id, fresh)
		}
	}
}

// receiptVerified checks a receipt against its receiver's key; one that
// does not verify is counted against the member that sent it.
func (r *room) receiptVerified(from mesh.PeerID, rc record.Receipt) bool {
	err := rc.VerifyWith(r.e.transport())
	switch {
	case err == nil:
		return true
	case errors.Is(err, mesh.ErrUnknownMember), errors.Is(err, mesh.ErrRevoked):
		r.e.log.Debug("receipt of an unknown or removed member", "peer", from, "receiver", rc.Receiver)
	default:
		r.e.bad.add(from)
		r.e.log.Warn("receipt does not verify; dropped", "peer", from, "member", r.e.peers.displayName(from),
			"receiver", r.authorName(rc.Receiver), "err", err,
			"fix", "the member that sent it altered it or is broken: if it goes on, remove it with 'meshfs remove'")
	}
	return false
}

// sendReceipts sends receipts to a member, as many messages as they need.
func (r *room) sendReceipts(to mesh.PeerID, rs []record.Receipt) {
	for len(rs) > 0 {
		n := min(len(rs), maxReceiptsPerMsg)
		r.send(to, (&receiptsMsg{Receipts: rs[:n]}).encode())
		rs = rs[n:]
	}
}
