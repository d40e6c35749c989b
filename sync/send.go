package sync

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/zeebo/blake3"

	"github.com/meshfs/meshfs/internal/safetext"
	"github.com/meshfs/meshfs/mesh"
)

// A file of StreamMinSize or more is offered at once, without block
// hashes, and hashed while it is sent: hashing 1 GiB first held its first
// block back by 0.2 s (0.35 s on one core). Every sender of the record
// reads every block anyway, so the hashes cost no extra read; the manifest
// completes when the first sender has read the last block, is stored with
// the record, and travels in DONE. The receiver keeps the hash of each
// block it writes and checks them all against that manifest before it
// verifies the file as usual; a block that does not match is asked for
// again, like a corrupt chunk. Later OFFERs of the record (other members,
// resumes) carry the manifest as small files' do.

// maxResendRounds is how often a sender answers an ACCEPT that asks again
// for blocks it sent (the receiver still lacks them) before it gives up
// for now. An ACCEPT for blocks not asked before is the receiver's next
// window (sources.go), not a resend.
const maxResendRounds = 3

// flight is one delivery a sender has offered and not yet finished.
type flight struct {
	rec      *outRecord
	d        *delivery
	streamed bool   // offered without block hashes: DONE carries them
	attr     bool   // an ATTR, not an OFFER: the member has the file, mode differs
	mode     uint32 // the mode offered or sent in the ATTR
	asked    bitmap // blocks earlier ACCEPTs asked for
	rounds   int
	last     time.Time // last reply; a silent receiver times out
}

// sender works through one connected peer's deliveries in order, with at
// most MaxOffersInFlight offered at once. It runs on one goroutine per
// connection, which owns its flights; on exit they go back to the queue.
type sender struct {
	o       *outbound
	p       *peerConn
	flights map[transferID]*flight
}

func newSender(o *outbound, p *peerConn) *sender {
	return &sender{o: o, p: p, flights: map[transferID]*flight{}}
}

// run is the sender's loop, until its connection ends.
func (s *sender) run() {
	background()
	if !s.greet() {
		return
	}
	defer s.releaseFlights()
	tick := time.NewTimer(s.o.retryTick())
	defer tick.Stop()
	for {
		if !s.fillOffers() {
			return
		}
		tick.Reset(s.o.retryTick())
		if !s.waiting() {
			tick.Stop() // idle: only new work or a reply wakes the loop
		}
		select {
		case <-s.p.ctx.Done():
			return
		case <-s.p.newWork:
		case <-tick.C:
			s.handleReplies()
			s.expireFlights()
			s.retryDue()
		case <-s.p.replies.signal:
			s.handleReplies()
		}
	}
}

// greet sends our HELLO, first on the connection, and waits for the
// peer's: nothing is offered before both sides know they speak the same
// sync protocol. It returns false when the connection ends first.
func (s *sender) greet() bool {
	hello := (&helloMsg{Version: Version}).encode()
	if err := s.o.transport().SendBytes(s.p.ctx, s.p.id, hello); err != nil {
		s.o.log.Debug("hello not sent", "peer", s.p.id, "err", err)
		return false
	}
	select {
	case <-s.p.hello:
		return true
	case <-s.p.ctx.Done():
		return false
	}
}

// busyRetry is how soon a delivery the receiver refused as busy is offered
// again.
const busyRetry = time.Second

// retryTick is how often refused deliveries and silent flights are checked.
func (o *outbound) retryTick() time.Duration {
	return min(max(o.cfg.RetryInterval/4, 10*time.Millisecond), busyRetry)
}

// offerTimeout: a flight with no reply for this long is offered again.
func (o *outbound) offerTimeout() time.Duration { return max(4*o.cfg.RetryInterval, time.Minute) }

// fillOffers offers the next queued deliveries up to the in-flight cap. It
// returns false when the peer's context ended.
func (s *sender) fillOffers() bool {
	for len(s.flights) < s.o.cfg.MaxOffersInFlight {
		if s.p.ctx.Err() != nil {
			// The transport addresses peers, not connections: a stopped
			// sender must not offer on the peer's next connection.
			return false
		}
		f := s.o.claimNext(s.p)
		if f == nil {
			return true
		}
		if f.rec.Partial && !s.o.comingIn(f.rec) {
			s.setDelivery(f, StateRefused, false, errNotHere.Error(), busyRetry)
			continue
		}
		s.flights[f.rec.ID] = f
		msg := s.o.attrFor(f)
		if !f.attr {
			offer, err := s.o.offerFor(f)
			if err != nil {
				s.o.log.Warn("file not offered", "path", f.rec.Rel, "err", err, "fix", "nothing: it is offered again")
				s.release(f)
				delete(s.flights, f.rec.ID)
				return true
			}
			f.streamed = offer.streamed()
			msg = offer.encode()
		}
		if err := s.o.transport().SendBytes(s.p.ctx, s.p.id, msg); err != nil {
			s.o.log.Debug("offer not sent", "peer", s.p.id, "path", f.rec.Rel, "err", err)
			s.release(f)
			delete(s.flights, f.rec.ID)
			return s.p.ctx.Err() == nil
		}
		s.o.log.Debug("offer sent", "peer", s.p.id, "path", f.rec.Rel, "id", f.rec.ID.String())
	}
	return true
}

// offerFor builds the OFFER of a flight, with the author's signature:
// ours, made now for the mode offered, or the one a relay record keeps.
// It is streamed, and unsigned, while its manifest is not complete yet.
func (o *outbound) offerFor(f *flight) (*offerMsg, error) {
	rec, m := f.rec, o.manifestOf(f.rec)
	offer := &offerMsg{
		ID: rec.ID, Path: rec.Rel, Size: uint64(m.Size), BlockSize: uint32(m.BlockSize), Mode: f.mode,
		MTime: rec.Version.MTime, Type: rec.Type, Target: rec.Target, Replaces: rec.Replaces, FileHash: m.FileHash,
		Blocks: m.Blocks, Author: o.authorOf(rec), Sig: rec.Sig,
	}
	if rec.To != "" {
		offer.To, _ = mesh.ParsePeerID(rec.To)
		offer.Path = rec.boxName()
	}
	if rec.relay() {
		offer.MTime = rec.AuthorMTime
		return offer, nil
	}
	if offer.streamed() {
		return offer, nil
	}
	var err error
	offer.Sig, err = o.signOffer(offer)
	return offer, err
}

// attrFor is the ATTR of an attr flight, or nil.
func (o *outbound) attrFor(f *flight) []byte {
	if !f.attr {
		return nil
	}
	return (&attrMsg{ID: f.rec.ID, Mode: f.mode}).encode()
}

// claimNext takes the oldest delivery for p that no sender owns and that
// is queued, or verified with an older mode (an ATTR).
func (o *outbound) claimNext(p *peerConn) *flight {
	key := p.id.String()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.order {
		d := r.Peers[key]
		if d == nil || d.owner != nil || r.cancelled || d.State != StateQueued && !modeDue(r, d) {
			continue
		}
		if d.State == StateQueued && o.uploadsFullLocked(r) {
			continue // others get it from the member(s) it is going to now
		}
		if r.To != "" && key != r.To && r.Peers[r.To] != nil && delivered(r, r.Peers[r.To]) {
			continue // a private file its member has: nobody needs to carry it
		}
		d.owner, d.phase, d.sent, d.started = p, PhaseOffered, 0, time.Now()
		f := &flight{rec: r, d: d, attr: d.State == StateVerified, mode: r.Mode, last: time.Now()}
		if !f.attr {
			d.Mode = f.mode
		}
		return f
	}
	return nil
}

// release gives a flight back to the queue (if this sender still owns it).
func (s *sender) release(f *flight) {
	s.o.mu.Lock()
	if f.d.owner == s.p {
		f.d.owner, f.d.phase, f.d.sent = nil, "", 0
	}
	s.o.mu.Unlock()
	s.o.slotFreed(f.rec)
}

// releaseFlights requeues every flight of a stopping sender.
func (s *sender) releaseFlights() {
	for _, f := range s.flights {
		s.release(f)
	}
}

// expireFlights re-offers deliveries whose receiver went silent.
func (s *sender) expireFlights() {
	for id, f := range s.flights {
		if time.Since(f.last) > s.o.offerTimeout() {
			s.o.log.Warn("member stopped answering about a file", "peer", s.p.id, "member", s.o.peers.displayName(s.p.id), "path", f.rec.Rel, "fix", "nothing: the file is offered again")
			s.release(f)
			delete(s.flights, id)
		}
	}
}

// waiting reports whether the sender has something the tick looks at: a
// flight that may go silent, or a refused delivery to offer again.
func (s *sender) waiting() bool {
	if len(s.flights) > 0 {
		return true
	}
	key := s.p.id.String()
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	for _, r := range s.o.order {
		if d := r.Peers[key]; d != nil && d.retryable() {
			return true
		}
	}
	return false
}

// retryDue requeues p's refused deliveries whose wait is over.
func (s *sender) retryDue() {
	key, now := s.p.id.String(), time.Now()
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	for _, r := range s.o.order {
		if d := r.Peers[key]; d != nil && d.retryable() && !now.Before(d.retryAt) {
			d.State = StateQueued
		}
	}
}

// handleReplies processes the receiver's replies in arrival order.
func (s *sender) handleReplies() {
	for _, m := range s.p.replies.take() {
		if s.p.ctx.Err() != nil {
			return
		}
		switch m := m.(type) {
		case *acceptMsg:
			s.onAccept(m)
		case *rejectMsg:
			s.onReject(m)
		case *ackMsg:
			s.onAck(m)
		}
	}
}

// onAccept sends the blocks the receiver lacks, then DONE.
func (s *sender) onAccept(m *acceptMsg) {
	f := s.flights[m.ID]
	if f == nil {
		s.o.log.Debug("accept for unknown transfer", "peer", s.p.id, "id", m.ID.String())
		return
	}
	f.last = time.Now()
	if f.attr || f.rec.Type != entryFile {
		s.o.log.Warn("member asked for the data of a folder or link", "peer", s.p.id, "member", s.o.peers.displayName(s.p.id), "path", f.rec.Rel, "fix", "nothing: it is offered again; if it repeats, run the same meshfs version on both")
		s.release(f)
		delete(s.flights, m.ID)
		return
	}
	if uint64(m.Have.n) != blockCount(uint64(f.rec.Manifest.Size), uint32(f.rec.Manifest.BlockSize)) {
		s.o.log.Warn("member asked for blocks the file does not have", "peer", s.p.id, "member", s.o.peers.displayName(s.p.id), "path", f.rec.Rel, "fix", "nothing: it is offered again; if it repeats, run the same meshfs version on both")
		s.release(f)
		delete(s.flights, m.ID)
		return
	}
	if f.askedAgain(m.Have) {
		f.rounds++
		if f.rounds > maxResendRounds {
			s.setDelivery(f, StateRefused, false, "blocks still missing after 3 resends", s.o.cfg.RetryInterval)
			delete(s.flights, m.ID)
			return
		}
	}
	done, err := s.sendBlocks(f, m.Have)
	if err == nil {
		// DONE rides the bulk queue behind the chunks: on the control
		// queue it could overtake them and trigger a needless resend round.
		err = s.o.transport().SendBulk(s.p.ctx, s.p.id, done.encode())
	}
	if err != nil {
		s.sendFailed(f, err)
		return
	}
	f.last = time.Now()
	s.setPhase(f, PhaseVerifying)
}

// askedAgain notes the blocks an ACCEPT asks for (those not in have), and
// reports whether one of them was asked for before.
func (f *flight) askedAgain(have bitmap) bool {
	if f.asked.n != have.n {
		f.asked = newBitmap(have.n)
	}
	again := false
	for i := range have.n {
		if have.has(i) {
			continue
		}
		again = again || f.asked.has(i)
		f.asked.set(i)
	}
	return again
}

// sendFailed drops a flight whose blocks could not be sent.
func (s *sender) sendFailed(f *flight, err error) {
	delete(s.flights, f.rec.ID)
	s.release(f)
	switch {
	case s.p.ctx.Err() != nil:
	case errors.Is(err, errNotHere):
		s.setDelivery(f, StateRefused, false, errNotHere.Error(), busyRetry)
	case errors.Is(err, errChanged) && f.rec.relay() && s.o.isCancelled(f.rec):
		// Every member has it, or the placed copy's record took over.
		s.o.log.Debug("passing on stopped: its record ended", "path", f.rec.Src)
	case errors.Is(err, errChanged) && f.rec.relay():
		s.o.log.Info("copy of another member's file changed or went here; no longer passed on", "path", f.rec.Src)
		s.o.dropRelay(f.rec)
	case errors.Is(err, errChanged):
		s.o.log.Info("outbox file changed while sending", "path", f.rec.Rel)
		s.o.jobs.push(job{kind: jobClosed, rel: f.rec.Rel})
	default:
		s.o.log.Warn("file not sent to member", "peer", s.p.id, "member", s.o.peers.displayName(s.p.id), "path", f.rec.Rel, "err", err, "fix", "nothing: it is offered again; if it repeats, check the file can be read")
	}
}

// sendBlocks sends every block not in have, reading the outbox file itself
// and checking before each block that it is still the version offered, and
// returns the DONE to send next. While the record has no manifest it reads
// the blocks the receiver holds too, and hashes them all (send.go).
func (s *sender) sendBlocks(f *flight, have bitmap) (*doneMsg, error) {
	rec := f.rec
	file, err := os.Open(s.o.sourceOf(rec))
	if err != nil {
		return nil, fmt.Errorf("open: %w", errChanged)
	}
	// A partial grows while it is passed on: each block waits until it is
	// held here (awaitBlock), and no file version is checked.
	defer file.Close()
	s.setPhase(f, PhaseSending)
	hashing := s.o.streamed(rec)
	// SendBulk copies: one buffer serves every block, or every piece of a
	// block larger than pieceSize.
	buf := make([]byte, chunkHeaderLen+min(rec.Manifest.BlockSize, pieceSize))
	for i := range have.n {
		if have.has(i) && !hashing {
			continue
		}
		if rec.Partial {
			if err := s.awaitBlock(rec, i); err != nil {
				return nil, err
			}
		}
		if err := s.sendBlock(f, file, i, buf, hashing, !have.has(i)); err != nil {
			return nil, err
		}
	}
	done := &doneMsg{ID: rec.ID}
	if f.streamed {
		m, err := s.o.finishStream(rec, file)
		if err != nil {
			return nil, err
		}
		offer, err := s.o.offerFor(f) // complete now: signed
		if err != nil {
			return nil, err
		}
		done.FileHash, done.Sig, done.Blocks = m.FileHash, offer.Sig, m.Blocks
	}
	return done, nil
}

// sendBlock reads block i into buf, hashes it for the manifest if hashing,
// and sends it if send. A block of zeros goes out as a CHUNK without data;
// one larger than pieceSize as pieces (sendPieces).
func (s *sender) sendBlock(f *flight, file *os.File, i int, buf []byte, hashing, send bool) error {
	rec := f.rec
	if err := s.p.ctx.Err(); err != nil {
		return err
	}
	if s.o.isCancelled(rec) {
		return fmt.Errorf("cancelled: %w", errChanged)
	}
	if blockLen(uint64(rec.Manifest.Size), uint32(rec.Manifest.BlockSize), uint32(i)) > pieceSize {
		return s.sendPieces(f, file, i, buf, hashing, send)
	}
	blk, err := readBlock(file, rec, i, buf)
	if err != nil {
		return err
	}
	if hashing {
		s.o.streamSum(rec, i, blk.sum)
	}
	if !send {
		return nil
	}
	return s.sendChunk(f, i, blk.msg, blk.n, blk.zero)
}

// sendChunk sends one CHUNK of block i carrying n bytes of it (all of
// them if zero: a CHUNK without data).
func (s *sender) sendChunk(f *flight, i int, msg []byte, n int, zero bool) error {
	if failLie && f.rec.relay() && len(msg) > chunkHeaderLen {
		msg[len(msg)-1] ^= 0xff // failpoint.go: a relay that damages what it passes on
	}
	if err := s.o.transport().SendBulk(s.p.ctx, s.p.id, msg); err != nil {
		return fmt.Errorf("send chunk %d of %s: %w", i, f.rec.Rel, err)
	}
	s.addSent(f, int64(n)) // progress: a zero block counts as sent
	s.o.log.Debug("chunk sent", "peer", s.p.id, "path", f.rec.Rel, "index", i, "bytes", n, "zero", zero)
	return nil
}

// sendPieces is sendBlock for a block larger than pieceSize. Its pieces go
// out in order, each read into buf just before it is sent, and are hashed
// as they pass when the manifest needs the block's hash: the block is
// never held whole. A block that is a hole or reads as zeros is one CHUNK
// without data, as a small one is; zero pieces of a block with data are
// sent as data (the receiver hashes the block as its pieces arrive).
func (s *sender) sendPieces(f *flight, file *os.File, i int, buf []byte, hashing, send bool) error {
	rec := f.rec
	if err := checkVersion(file, rec); err != nil {
		return err
	}
	n := blockLen(uint64(rec.Manifest.Size), uint32(rec.Manifest.BlockSize), uint32(i))
	off := int64(i) * int64(rec.Manifest.BlockSize)
	first, err := firstData(file, off, n, buf[chunkHeaderLen:])
	if err != nil {
		return fmt.Errorf("read block %d: %w", i, err)
	}
	if first < 0 {
		if hashing {
			s.o.streamSum(rec, i, func() hash32 { return zeroSum(n) })
		}
		if !send {
			return nil
		}
		return s.sendChunk(f, i, appendChunkHeader(buf[:0], rec.ID, uint32(i), 0), n, true)
	}
	var h *blake3.Hasher
	if hashing && !s.o.streamKnown(rec, i) {
		h = blake3.New()
	}
	if !send && h == nil {
		return nil
	}
	for p := 0; p*pieceSize < n; p++ {
		pOff := p * pieceSize
		msg := appendChunkHeader(buf[:0], rec.ID, uint32(i), uint32(pOff))[:chunkHeaderLen+min(pieceSize, n-pOff)]
		switch {
		case p < first: // known zeros: not read again
			clear(msg[chunkHeaderLen:])
		case p > 0: // piece 0 with data is in buf already (firstData)
			if _, err := file.ReadAt(msg[chunkHeaderLen:], off+int64(pOff)); err != nil {
				return fmt.Errorf("read block %d: %w", i, errChanged)
			}
		}
		if h != nil {
			h.Write(msg[chunkHeaderLen:])
		}
		if send {
			if err := s.sendChunk(f, i, msg, len(msg)-chunkHeaderLen, false); err != nil {
				return err
			}
		}
	}
	if h != nil {
		s.o.streamSum(rec, i, func() hash32 { return sumOf(h) })
	}
	return nil
}

// firstData returns the first piece of the n-byte block at off that holds
// a byte other than zero, left in buf, or -1 when the block is all zeros:
// a hole (not read) or zeros on disk (read once here).
func firstData(file *os.File, off int64, n int, buf []byte) (int, error) {
	if !hasData(file, off, n) {
		return -1, nil
	}
	for p := 0; p*pieceSize < n; p++ {
		pOff, k := off+int64(p*pieceSize), min(pieceSize, n-p*pieceSize)
		if !hasData(file, pOff, k) {
			continue
		}
		if _, err := file.ReadAt(buf[:k], pOff); err != nil {
			return 0, errChanged
		}
		if !allZero(buf[:k]) {
			return p, nil
		}
	}
	return -1, nil
}

// outBlock is one block read for sending.
type outBlock struct {
	msg  []byte // the CHUNK message: header, then the data unless zero
	n    int    // the block's length
	zero bool   // all zeros: msg carries no data
}

// sum is the block's hash.
func (b outBlock) sum() hash32 {
	if b.zero {
		return zeroSum(b.n)
	}
	return blockSum(b.msg[chunkHeaderLen:])
}

// checkVersion fails with errChanged unless file is still the version rec
// describes.
func checkVersion(file *os.File, rec *outRecord) error {
	if rec.Partial {
		return nil // it grows; every block sent was verified here
	}
	fi, err := file.Stat()
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	if !versionOf(fi).sameFile(rec.Version) {
		return errChanged
	}
	return nil
}

// readBlock reads block i (at most pieceSize) into a CHUNK message in buf,
// after checking the file is unchanged. A block in a hole of the file is
// not read, and one that reads as all zeros is not sent as data: both go
// out as CHUNKs without data. It does not hash the block again: the
// version check catches a rewrite, and the receiver verifies every block
// anyway (a changed block is dropped and asked for again, and the resend
// then fails the fileVersion check here).
func readBlock(file *os.File, rec *outRecord, i int, buf []byte) (outBlock, error) {
	if err := checkVersion(file, rec); err != nil {
		return outBlock{}, err
	}
	n := blockLen(uint64(rec.Manifest.Size), uint32(rec.Manifest.BlockSize), uint32(i))
	off := int64(i) * int64(rec.Manifest.BlockSize)
	hdr := appendChunkHeader(buf[:0], rec.ID, uint32(i), 0)
	if !hasData(file, off, n) {
		return outBlock{msg: hdr, n: n, zero: true}, nil
	}
	msg := hdr[:chunkHeaderLen+n]
	if _, err := file.ReadAt(msg[chunkHeaderLen:], off); err != nil {
		return outBlock{}, fmt.Errorf("read block %d: %w", i, errChanged)
	}
	if allZero(msg[chunkHeaderLen:]) {
		return outBlock{msg: hdr, n: n, zero: true}, nil
	}
	return outBlock{msg: msg, n: n}, nil
}

// onReject records a refusal: permanent ones stay until the file changes,
// others are retried after RetryInterval or on reconnect.
func (s *sender) onReject(m *rejectMsg) {
	f := s.flights[m.ID]
	if f == nil {
		return
	}
	delete(s.flights, m.ID)
	reason := safetext.Text(m.Reason)
	if reason == "" {
		reason = m.Code.String()
	}
	level := slog.LevelWarn
	if m.Code == rejectBusy { // it is getting the file from another member, or others: routine
		level = slog.LevelDebug
	}
	s.o.log.Log(s.p.ctx, level, "member refused the file", "peer", s.p.id, "member", s.o.peers.displayName(s.p.id), "path", f.rec.Rel,
		"code", m.Code.String(), "reason", reason, "final", m.Code.permanent(), "fix", rejectFix(m.Code, s.o.peers.displayName(s.p.id)))
	retryIn := s.o.cfg.RetryInterval
	if m.Code == rejectBusy { // a slot frees as soon as one of its transfers ends
		retryIn = min(retryIn, busyRetry)
	}
	s.setDelivery(f, StateRefused, m.Code.permanent(), reason, retryIn)
}

// onAck marks a delivery verified and lets the outbox loop finish the file.
func (s *sender) onAck(m *ackMsg) {
	f := s.flights[m.ID]
	if f == nil {
		return
	}
	delete(s.flights, m.ID)
	s.o.log.Info(f.rec.Type.String()+" delivered", "peer", s.p.id, "name", s.o.peers.displayName(s.p.id), "path", f.rec.Rel)
	name := s.o.peers.displayName(s.p.id) // before o.mu: one lock at a time
	s.o.mu.Lock()
	f.d.Mode = f.mode // an ATTR's mode is applied, or the file placed with it
	done := TransferStatus{Path: f.rec.Rel, Peer: name, Direction: "send",
		Size: f.rec.Manifest.Size, Done: f.rec.Manifest.Size, State: string(StateVerified),
		StartedAt: f.d.started, FinishedAt: time.Now()}
	s.o.mu.Unlock()
	s.setDelivery(f, StateVerified, false, "", 0)
	if !f.attr && !f.rec.relay() { // a mode change, or a file passed on, is not a delivery of ours to show
		s.o.noteDelivered(done)
	}
	s.o.jobs.push(job{kind: jobFinish, id: m.ID})
}

// setDelivery ends a flight with a persisted state.
func (s *sender) setDelivery(f *flight, state DeliveryState, final bool, reason string, retryIn time.Duration) {
	s.o.mu.Lock()
	if f.d.owner == s.p {
		f.d.owner, f.d.phase = nil, ""
	}
	f.d.State, f.d.Final, f.d.Reason = state, final, reason
	f.d.retryAt = time.Now().Add(retryIn)
	s.o.mu.Unlock()
	s.o.slotFreed(f.rec)
	if err := s.o.saveRecord(f.rec); err != nil {
		s.o.log.Warn("delivery state not saved; the file may be sent again after a restart", "path", f.rec.Rel, "err", err, "fix", fixState)
	}
}

func (s *sender) setPhase(f *flight, phase DeliveryState) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	if f.d.owner == s.p {
		f.d.phase = phase
	}
}

func (s *sender) addSent(f *flight, n int64) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	if f.d.owner == s.p {
		f.d.sent += n
	}
}

func (o *outbound) isCancelled(rec *outRecord) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return rec.cancelled
}

// streamHashes are the block hashes of a record being hashed as it is
// sent, shared by its senders. Guarded by outbound.mu.
type streamHashes struct {
	sums  []hash32
	known bitmap
}

// streamed reports whether rec is still without its manifest.
func (o *outbound) streamed(rec *outRecord) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return rec.Manifest.Blocks == nil && rec.Manifest.Size > 0
}

// manifestOf returns rec's manifest; its block list is nil until a
// streamed record has been read once.
func (o *outbound) manifestOf(rec *outRecord) manifest {
	o.mu.Lock()
	defer o.mu.Unlock()
	return rec.Manifest
}

// streamKnown reports whether the hash of block i of rec is known already,
// from its manifest or another sender's pass.
func (o *outbound) streamKnown(rec *outRecord, i int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return rec.Manifest.Blocks != nil || rec.stream != nil && rec.stream.known.has(i)
}

// streamSum returns the hash of block i of rec, calling sum unless another
// sender of rec already did.
func (o *outbound) streamSum(rec *outRecord, i int, sum func() hash32) hash32 {
	o.mu.Lock()
	if rec.Manifest.Blocks != nil {
		h := rec.Manifest.Blocks[i]
		o.mu.Unlock()
		return h
	}
	if rec.stream == nil {
		n := int(blockCount(uint64(rec.Manifest.Size), uint32(rec.Manifest.BlockSize)))
		rec.stream = &streamHashes{sums: make([]hash32, n), known: newBitmap(n)}
	}
	s := rec.stream
	if s.known.has(i) {
		h := s.sums[i]
		o.mu.Unlock()
		return h
	}
	o.mu.Unlock()
	h := sum()
	o.mu.Lock()
	s.sums[i] = h
	s.known.set(i)
	o.mu.Unlock()
	return h
}

// finishStream completes rec's manifest once every block was hashed, checks
// that file still is the version the record describes, and stores the
// record. Another sender may have completed it first.
func (o *outbound) finishStream(rec *outRecord, file *os.File) (manifest, error) {
	fi, err := file.Stat()
	if err != nil || !versionOf(fi).sameFile(rec.Version) {
		return manifest{}, errChanged
	}
	o.mu.Lock()
	if rec.Manifest.Blocks == nil {
		s := rec.stream
		if s == nil || s.known.count() != s.known.n {
			o.mu.Unlock()
			return manifest{}, fmt.Errorf("stream of %s: blocks left unhashed", rec.Rel)
		}
		// A copy: another sender of rec may still be writing a hash it
		// computed into s.sums, while saveRecord encodes the manifest
		// outside the lock.
		rec.Manifest.Blocks = slices.Clone(s.sums)
		rec.Manifest.FileHash = fileHashOf(uint64(rec.Manifest.Size), uint32(rec.Manifest.BlockSize), rec.Manifest.Blocks)
		rec.stream = nil
	}
	m := rec.Manifest
	o.mu.Unlock()
	if err := o.saveRecord(rec); err != nil {
		o.log.Warn("delivery state not saved; the file may be sent again after a restart", "path", rec.Rel, "err", err, "fix", fixState)
	}
	return m, nil
}
