package sync

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/meshfs/meshfs/internal/safetext"
)

// maxResendRounds is how often a sender answers ACCEPT-after-DONE (blocks
// the receiver still lacks) before it gives up for now.
const maxResendRounds = 3

// flight is one delivery a sender has offered and not yet finished.
type flight struct {
	rec      *outRecord
	d        *delivery
	streamed bool // offered without block hashes: DONE carries them
	doneSent bool
	rounds   int
	last     time.Time // last reply; a silent receiver times out
}

// runSender works through one connected peer's deliveries in order, with
// at most MaxOffersInFlight offered at once. It owns its flights; on exit
// they go back to the queue.
func (e *Engine) runSender(p *peerConn) {
	flights := map[transferID]*flight{}
	defer e.releaseFlights(p, flights)
	tick := time.NewTicker(e.retryTick())
	defer tick.Stop()
	for {
		if !e.fillOffers(p, flights) {
			return
		}
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		case <-tick.C:
			e.handleMail(p, flights)
			e.expireFlights(p, flights)
			e.retryDue(p)
		case <-p.mail.signal:
			e.handleMail(p, flights)
		}
	}
}

// retryTick is how often refused deliveries and silent flights are checked.
func (e *Engine) retryTick() time.Duration {
	return min(max(e.cfg.RetryInterval/4, 10*time.Millisecond), 5*time.Second)
}

// offerTimeout: a flight with no reply for this long is offered again.
func (e *Engine) offerTimeout() time.Duration { return max(4*e.cfg.RetryInterval, time.Minute) }

// fillOffers offers the next queued deliveries up to the in-flight cap. It
// returns false when the peer's context ended.
func (e *Engine) fillOffers(p *peerConn, flights map[transferID]*flight) bool {
	for len(flights) < e.cfg.MaxOffersInFlight {
		if p.ctx.Err() != nil {
			// The transport addresses peers, not connections: a stopped
			// sender must not offer on the peer's next connection.
			return false
		}
		f := e.claimNext(p)
		if f == nil {
			return true
		}
		flights[f.rec.ID] = f
		offer := e.offerFor(f.rec)
		f.streamed = offer.streamed()
		if err := e.transport().SendBytes(p.ctx, p.id, offer.encode()); err != nil {
			e.log.Debug("offer not sent", "peer", p.id, "path", f.rec.Rel, "err", err)
			e.release(p, f)
			delete(flights, f.rec.ID)
			return p.ctx.Err() == nil
		}
		e.log.Debug("offer sent", "peer", p.id, "path", f.rec.Rel, "id", f.rec.ID.String())
	}
	return true
}

// offerFor builds the OFFER of a record: streamed while its manifest is
// not complete yet.
func (e *Engine) offerFor(rec *outRecord) *offerMsg {
	m := e.manifestOf(rec)
	return &offerMsg{
		ID: rec.ID, Path: rec.Rel, Size: uint64(m.Size), BlockSize: uint32(m.BlockSize),
		Mode: rec.Ident.Mode & 0o777, MTime: rec.Ident.MTime, FileHash: m.FileHash, Blocks: m.Blocks,
	}
}

// claimNext takes the oldest queued delivery for p that no sender owns.
func (e *Engine) claimNext(p *peerConn) *flight {
	key := p.id.String()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.outOrder {
		d := r.Peers[key]
		if d == nil || d.State != stateQueued || d.owner != nil || r.cancelled {
			continue
		}
		d.owner, d.phase, d.sent, d.started = p, "offered", 0, time.Now()
		return &flight{rec: r, d: d, last: time.Now()}
	}
	return nil
}

// release gives a flight back to the queue (if this sender still owns it).
func (e *Engine) release(p *peerConn, f *flight) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f.d.owner == p {
		f.d.owner, f.d.phase, f.d.sent = nil, "", 0
	}
}

// releaseFlights requeues every flight of a stopping sender.
func (e *Engine) releaseFlights(p *peerConn, flights map[transferID]*flight) {
	for _, f := range flights {
		e.release(p, f)
	}
}

// expireFlights re-offers deliveries whose receiver went silent.
func (e *Engine) expireFlights(p *peerConn, flights map[transferID]*flight) {
	for id, f := range flights {
		if time.Since(f.last) > e.offerTimeout() {
			e.log.Warn("delivery timed out", "peer", p.id, "path", f.rec.Rel)
			e.release(p, f)
			delete(flights, id)
		}
	}
}

// retryDue requeues p's refused deliveries whose wait is over.
func (e *Engine) retryDue(p *peerConn) {
	key, now := p.id.String(), time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.outOrder {
		if d := r.Peers[key]; d != nil && d.State == stateRefused && !now.Before(d.retryAt) {
			d.State = stateQueued
		}
	}
}

// handleMail processes the receiver's replies in arrival order.
func (e *Engine) handleMail(p *peerConn, flights map[transferID]*flight) {
	for _, m := range p.mail.take() {
		if p.ctx.Err() != nil {
			return
		}
		switch m := m.(type) {
		case *acceptMsg:
			e.onAccept(p, flights, m)
		case *rejectMsg:
			e.onReject(p, flights, m)
		case *ackMsg:
			e.onAck(p, flights, m)
		}
	}
}

// onAccept sends the blocks the receiver lacks, then DONE.
func (e *Engine) onAccept(p *peerConn, flights map[transferID]*flight, m *acceptMsg) {
	f := flights[m.ID]
	if f == nil {
		e.log.Debug("accept for unknown transfer", "peer", p.id, "id", m.ID.String())
		return
	}
	f.last = time.Now()
	if uint64(m.Have.n) != blockCount(uint64(f.rec.Manifest.Size), uint32(f.rec.Manifest.BlockSize)) {
		e.log.Warn("accept with wrong bitmap size", "peer", p.id, "path", f.rec.Rel)
		e.release(p, f)
		delete(flights, m.ID)
		return
	}
	if f.doneSent {
		f.rounds++
		if f.rounds > maxResendRounds {
			e.setDelivery(p, f, stateRefused, "failed: blocks still missing after 3 resends")
			delete(flights, m.ID)
			return
		}
	}
	done, err := e.sendBlocks(p, f, m.Have)
	if err == nil {
		// DONE rides the bulk queue behind the chunks: on the control
		// queue it could overtake them and trigger a needless resend round.
		err = e.transport().SendBulk(p.ctx, p.id, done.encode())
	}
	if err != nil {
		e.sendFailed(p, flights, f, err)
		return
	}
	f.doneSent = true
	f.last = time.Now()
	e.setPhase(p, f, "verifying")
}

// sendFailed drops a flight whose blocks could not be sent.
func (e *Engine) sendFailed(p *peerConn, flights map[transferID]*flight, f *flight, err error) {
	delete(flights, f.rec.ID)
	e.release(p, f)
	switch {
	case p.ctx.Err() != nil:
	case errors.Is(err, errChanged):
		e.log.Info("outbox file changed while sending", "path", f.rec.Rel)
		e.OutboxClosed(f.rec.Rel)
	default:
		e.log.Warn("send failed", "peer", p.id, "path", f.rec.Rel, "err", err)
	}
}

// sendBlocks sends every block not in have, reading the outbox file itself
// and checking before each block that it is still the version offered, and
// returns the DONE to send next. While the record has no manifest it reads
// the blocks the receiver holds too, and hashes them all (stream.go).
func (e *Engine) sendBlocks(p *peerConn, f *flight, have bitmap) (*doneMsg, error) {
	rec := f.rec
	file, err := os.Open(filepath.Join(e.outboxDir, filepath.FromSlash(rec.Rel)))
	if err != nil {
		return nil, fmt.Errorf("open: %w", errChanged)
	}
	defer file.Close()
	e.setPhase(p, f, "sending")
	hashing := e.streamed(rec)
	bs := rec.Manifest.BlockSize
	buf := make([]byte, chunkHeaderLen+bs) // SendBulk copies: one buffer serves every block
	for i := range have.n {
		if have.has(i) && !hashing {
			continue
		}
		if err := e.sendBlock(p, f, file, i, buf, hashing, !have.has(i)); err != nil {
			return nil, err
		}
	}
	done := &doneMsg{ID: rec.ID}
	if f.streamed {
		m, err := e.finishStream(rec, file)
		if err != nil {
			return nil, err
		}
		done.FileHash, done.Blocks = m.FileHash, m.Blocks
	}
	return done, nil
}

// sendBlock reads block i into buf, hashes it for the manifest if hashing,
// and sends it if send.
func (e *Engine) sendBlock(p *peerConn, f *flight, file *os.File, i int, buf []byte, hashing, send bool) error {
	rec := f.rec
	if err := p.ctx.Err(); err != nil {
		return err
	}
	if e.isCancelled(rec) {
		return fmt.Errorf("cancelled: %w", errChanged)
	}
	data, err := readBlock(file, rec, i, buf)
	if err != nil {
		return err
	}
	if hashing {
		e.streamSum(rec, i, data[chunkHeaderLen:])
	}
	if !send {
		return nil
	}
	if err := e.transport().SendBulk(p.ctx, p.id, data); err != nil {
		return fmt.Errorf("send chunk %d of %s: %w", i, rec.Rel, err)
	}
	e.addSent(p, f, int64(len(data)-chunkHeaderLen))
	e.log.Debug("chunk sent", "peer", p.id, "path", rec.Rel, "index", i)
	return nil
}

// readBlock reads block i into a CHUNK message in buf, after checking the
// file is unchanged. It does not hash
// the block again: the identity check catches a rewrite, and the receiver
// verifies every block anyway (a changed block is dropped and asked for
// again, and the resend then fails the identity check here).
func readBlock(file *os.File, rec *outRecord, i int, buf []byte) ([]byte, error) {
	fi, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	if !identityOf(fi).sameFile(rec.Ident) {
		return nil, errChanged
	}
	n := blockLen(uint64(rec.Manifest.Size), uint32(rec.Manifest.BlockSize), uint32(i))
	buf = appendChunkHeader(buf[:0], rec.ID, uint32(i))[:chunkHeaderLen+n]
	if _, err := file.ReadAt(buf[chunkHeaderLen:], int64(i)*int64(rec.Manifest.BlockSize)); err != nil {
		return nil, fmt.Errorf("read block %d: %w", i, errChanged)
	}
	return buf, nil
}

// onReject records a refusal: permanent ones stay until the file changes,
// others are retried after RetryInterval or on reconnect.
func (e *Engine) onReject(p *peerConn, flights map[transferID]*flight, m *rejectMsg) {
	f := flights[m.ID]
	if f == nil {
		return
	}
	delete(flights, m.ID)
	reason := safetext.Text(m.Reason)
	if reason == "" {
		reason = m.Code.String()
	}
	state := stateRefused
	if m.Code.permanent() {
		state = stateRejected
	}
	e.log.Warn("delivery refused", "peer", p.id, "name", e.displayName(p.id), "path", f.rec.Rel,
		"code", m.Code.String(), "reason", reason, "permanent", m.Code.permanent())
	e.setDelivery(p, f, state, reason)
}

// onAck marks a delivery verified and lets the outbox loop finish the file.
func (e *Engine) onAck(p *peerConn, flights map[transferID]*flight, m *ackMsg) {
	f := flights[m.ID]
	if f == nil {
		return
	}
	delete(flights, m.ID)
	e.log.Info("file delivered", "peer", p.id, "name", e.displayName(p.id), "path", f.rec.Rel)
	e.setDelivery(p, f, stateVerified, "")
	e.jobs.push(job{kind: jobFinish, id: m.ID})
}

// setDelivery ends a flight with a persisted state.
func (e *Engine) setDelivery(p *peerConn, f *flight, state, reason string) {
	e.mu.Lock()
	if f.d.owner == p {
		f.d.owner, f.d.phase = nil, ""
	}
	f.d.State, f.d.Reason = state, reason
	f.d.retryAt = time.Now().Add(e.cfg.RetryInterval)
	e.mu.Unlock()
	if err := e.saveRecord(f.rec); err != nil {
		e.log.Warn("delivery record not saved", "path", f.rec.Rel, "err", err)
	}
}

func (e *Engine) setPhase(p *peerConn, f *flight, phase string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f.d.owner == p {
		f.d.phase = phase
	}
}

func (e *Engine) addSent(p *peerConn, f *flight, n int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if f.d.owner == p {
		f.d.sent += n
	}
}

func (e *Engine) isCancelled(rec *outRecord) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return rec.cancelled
}
