package sync

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/mesh"
)

// partialsName is the hidden folder of partial files inside inbox/.
const partialsName = ".meshfs-partials"

// inKey identifies an inbound transfer: a peer can only feed its own.
type inKey struct {
	peer mesh.PeerID
	id   transferID
}

// partialMeta is the sidecar of a partial file: its manifest, so that a
// restarted node can resume.
type partialMeta struct {
	Hash      string     `json:"hash"` // blockHashName
	Peer      string     `json:"peer"`
	ID        transferID `json:"id"`
	Path      string     `json:"path"` // validated, NFC
	Size      uint64     `json:"size"`
	BlockSize uint32     `json:"block_size"`
	Mode      uint32     `json:"mode"`
	MTime     int64      `json:"mtime"`
	FileHash  hash32     `json:"file_hash"`
	Blocks    []hash32   `json:"blocks"`
	Started   time.Time  `json:"started"`
}

// blocks is the number of blocks of the file.
func (m *partialMeta) blocks() int { return int(blockCount(m.Size, m.BlockSize)) }

// streamed reports whether the manifest has not arrived yet (stream.go).
func (m *partialMeta) streamed() bool { return len(m.Blocks) == 0 && m.Size > 0 }

// inTransfer is one inbound transfer: a partial file being filled.
type inTransfer struct {
	key  inKey
	meta partialMeta

	// Guarded by Engine.mu; f is used only by its owner's receiver.
	owner     *peerConn // receiver that has it open; nil when idle
	f         *os.File
	direct    *os.File // O_DIRECT descriptor of the same partial, or nil (direct.go)
	have      bitmap
	got       []hash32 // streamed: the hash of each block written, checked at DONE
	haveKnown bool     // false after a restart until the partial is re-hashed
	rounds    int
	last      time.Time
}

// closeFile closes the partial's descriptor (Engine.mu held or owner).
func (t *inTransfer) closeFile() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	if t.direct != nil {
		t.direct.Close()
		t.direct = nil
	}
}

// sameManifest reports whether a re-OFFER matches what we stored. Either
// side may still be without the block hashes (stream.go); DONE then checks.
func (t *inTransfer) sameManifest(m *offerMsg) bool {
	if t.meta.Size != m.Size || t.meta.BlockSize != m.BlockSize {
		return false
	}
	return m.streamed() || t.meta.streamed() || t.meta.FileHash == m.FileHash
}

// partBase is the file name stem of a partial: full peer ID (a short one
// could be ground to collide) and transfer ID.
func partBase(k inKey) string { return k.peer.String() + "-" + k.id.String() }

func (e *Engine) partPath(k inKey) string { return filepath.Join(e.partsDir, partBase(k)+".part") }
func (e *Engine) metaPath(k inKey) string { return filepath.Join(e.partsDir, partBase(k)+".json") }

// runReceiver handles one peer's OFFER, CHUNK and DONE messages in order.
func (e *Engine) runReceiver(p *peerConn) {
	defer e.closePeerFiles(p)
	wb := e.newWriteBehind()
	defer wb.stop(e, p)
	tick := time.NewTicker(max(e.cfg.InboundIdle/2, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case in := <-p.inbound:
			if c, ok := in.msg.(*chunkMsg); ok {
				e.onChunk(p, wb, c, in.buf)
				continue
			}
			wb.settle(e, p) // OFFER and DONE see every block written
			e.receive(p, in)
		case err := <-wb.finished():
			wb.applied(e, p, err)
		case <-tick.C:
			wb.settle(e, p)
			e.closeIdle(p, time.Now().Add(-e.cfg.InboundIdle))
		}
	}
}

// inMsg is a decoded OFFER, CHUNK or DONE on its way to the receiver.
type inMsg struct {
	msg any
	buf []byte // a CHUNK's block buffer, from and back to p.bufs
}

// newInMsg decodes data into a message for p's receiver. data is only
// valid during the call (the mesh reuses it), so a CHUNK's block is copied
// into one of p's block buffers, waiting for one to be free; it fails with
// p's context error when p stops first. The block is hashed by the
// receiver, not here: the mesh reader already decrypts every byte, and the
// receiver's O_DIRECT writes leave its core free while they wait.
func newInMsg(p *peerConn, data []byte) (inMsg, error) {
	msg, err := decodeMessage(data)
	if err != nil {
		return inMsg{}, err
	}
	in := inMsg{msg: msg}
	if c, ok := msg.(*chunkMsg); ok {
		if in.buf = p.bufs.get(p.ctx, len(c.Data)); in.buf == nil {
			return inMsg{}, p.ctx.Err()
		}
		c.Data = in.buf[:copy(in.buf, c.Data)]
	}
	return in, nil
}

// receive handles an OFFER or a DONE (CHUNKs go to onChunk).
func (e *Engine) receive(p *peerConn, in inMsg) {
	switch m := in.msg.(type) {
	case *offerMsg:
		e.onOffer(p, m)
	case *doneMsg:
		e.onDone(p, m)
	default:
		e.log.Debug("unexpected message", "peer", p.id, "type", fmt.Sprintf("%T", m))
	}
}

// reply sends a control message to p; failures mean the peer is gone.
func (e *Engine) reply(p *peerConn, data []byte) {
	if err := e.transport().SendBytes(p.ctx, p.id, data); err != nil {
		e.log.Debug("reply not sent", "peer", p.id, "err", err)
	}
}

func (e *Engine) reject(p *peerConn, id transferID, code rejectCode, reason string) {
	e.reply(p, (&rejectMsg{ID: id, Code: code, Reason: reason}).encode())
}

// onOffer validates an OFFER before touching the disk, then answers ACK
// (already done), ACCEPT with the blocks held, or REJECT.
func (e *Engine) onOffer(p *peerConn, m *offerMsg) {
	k := inKey{p.id, m.ID}
	e.mu.Lock()
	_, done := e.completed[k]
	_, known := e.in[k]
	e.mu.Unlock()
	if done {
		e.reply(p, (&ackMsg{ID: m.ID}).encode())
		return
	}
	if !known {
		if code, reason := e.admit(p, m); code != 0 {
			e.log.Info("offer refused", "peer", p.id, "path", m.Path, "code", code.String(), "reason", reason)
			e.reject(p, m.ID, code, reason)
			return
		}
	}
	t, code, err := e.claimIn(p, k)
	if err != nil {
		e.reject(p, m.ID, code, err.Error())
		return
	}
	if !t.sameManifest(m) {
		e.reject(p, m.ID, rejectIO, "transfer id reused with a different manifest")
		return
	}
	if !m.streamed() {
		if err := e.adoptManifest(p, t, m.FileHash, m.Blocks); err != nil {
			e.failIn(p, t, "verify manifest", err)
			return
		}
	}
	e.mu.Lock()
	have := bitmap{n: t.have.n, bits: append([]byte(nil), t.have.bits...)}
	e.mu.Unlock()
	e.reply(p, (&acceptMsg{ID: m.ID, Have: have}).encode())
}

// admit checks a new OFFER and creates its partial. It returns a reject
// code and reason, or 0.
func (e *Engine) admit(p *peerConn, m *offerMsg) (rejectCode, string) {
	clean, err := validatePath(m.Path)
	if err != nil {
		return rejectName, err.Error()
	}
	if m.Size > uint64(e.cfg.MaxFileSize) {
		return rejectTooBig, fmt.Sprintf("%s is over the %s limit", humanIEC(m.Size), humanIEC(uint64(e.cfg.MaxFileSize)))
	}
	if code, reason := e.checkQuota(p.id, m.Size); code != 0 {
		return code, reason
	}
	if code, reason := e.checkSpace(m.Size); code != 0 {
		return code, reason
	}
	meta := partialMeta{
		Hash: blockHashName, Peer: p.id.String(), ID: m.ID, Path: clean, Size: m.Size, BlockSize: m.BlockSize,
		Mode: m.Mode, MTime: m.MTime, FileHash: m.FileHash, Blocks: m.Blocks, Started: time.Now(),
	}
	if err := e.createPartial(inKey{p.id, m.ID}, meta); err != nil {
		return ioCode(err), err.Error()
	}
	return 0, ""
}

// createPartial makes the empty partial file and its sidecar.
func (e *Engine) createPartial(k inKey, meta partialMeta) error {
	f, err := os.OpenFile(e.partPath(k), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create partial: %w", err)
	}
	err = preallocate(f, meta.Size)
	f.Close()
	if err != nil {
		os.Remove(e.partPath(k))
		return err
	}
	if err := atomicfile.WriteJSON(e.metaPath(k), &meta); err != nil {
		os.Remove(e.partPath(k))
		return err
	}
	t := &inTransfer{key: k, meta: meta, have: newBitmap(meta.blocks()), haveKnown: true, last: time.Now()}
	if meta.streamed() {
		t.got = make([]hash32, meta.blocks())
	}
	e.mu.Lock()
	e.in[k] = t
	e.mu.Unlock()
	return nil
}

// checkQuota refuses when this peer's partials would exceed 2*MaxFileSize.
func (e *Engine) checkQuota(peer mesh.PeerID, size uint64) (rejectCode, string) {
	e.mu.Lock()
	var used uint64
	for k, t := range e.in {
		if k.peer == peer {
			used += t.meta.Size
		}
	}
	e.mu.Unlock()
	if limit := 2 * uint64(e.cfg.MaxFileSize); used+size > limit {
		return rejectQuota, fmt.Sprintf("%s of partial transfers already held, limit %s: %v",
			humanIEC(used), humanIEC(limit), ErrQuota)
	}
	return 0, ""
}

// checkSpace refuses when the file would eat into the MinFreePercent reserve.
func (e *Engine) checkSpace(need uint64) (rejectCode, string) {
	free, total, err := e.freeSpace(e.inboxDir)
	if err != nil {
		return rejectIO, err.Error()
	}
	reserve := uint64(float64(total) * e.cfg.MinFreePercent / 100)
	if free < reserve || free-reserve < need {
		return rejectNoSpace, fmt.Sprintf("no space left on %s's disk: needs %s, %s free",
			e.selfName(), humanIEC(need), humanIEC(free))
	}
	return 0, ""
}

// claimIn makes p the owner of transfer k with its partial open, within the
// concurrency caps, and re-hashes the partial if its blocks are unknown.
func (e *Engine) claimIn(p *peerConn, k inKey) (*inTransfer, rejectCode, error) {
	e.mu.Lock()
	t := e.in[k]
	switch {
	case t == nil:
		e.mu.Unlock()
		return nil, rejectIO, errors.New("partial vanished")
	case t.owner != nil && t.owner != p:
		e.mu.Unlock()
		return nil, rejectBusy, errors.New("transfer busy on another connection")
	case t.owner == nil:
		if !e.slotFreeLocked(p) {
			e.mu.Unlock()
			return nil, rejectBusy, errors.New("too many transfers at once, try later")
		}
		t.owner = p
	}
	t.last = time.Now()
	e.mu.Unlock()
	if err := e.openPartial(t); err != nil {
		e.dropPartial(t)
		return nil, ioCode(err), err
	}
	return t, 0, nil
}

// slotFreeLocked applies the per-peer and global caps, first freeing p's
// own transfers idle for longer than InboundIdle (other receivers free
// theirs on their own tick: only an owner may close its files).
func (e *Engine) slotFreeLocked(p *peerConn) bool {
	cutoff := time.Now().Add(-e.cfg.InboundIdle)
	perPeer, total := 0, 0
	for k, t := range e.in {
		if t.owner == nil {
			continue
		}
		if t.owner == p && t.last.Before(cutoff) {
			t.closeFile()
			t.owner = nil
			continue
		}
		total++
		if k.peer == p.id {
			perPeer++
		}
	}
	return perPeer < e.cfg.MaxInboundPerPeer && total < e.cfg.MaxInboundTotal
}

// openPartial opens the partial for writing (large files also with
// O_DIRECT) and learns which blocks it holds when that is not known (after
// a restart).
func (e *Engine) openPartial(t *inTransfer) error {
	if t.f == nil {
		f, err := os.OpenFile(e.partPath(t.key), os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("open partial: %w", err)
		}
		t.f = f
		if t.meta.Size >= directMinSize {
			t.direct = openDirect(e.partPath(t.key), int(t.meta.BlockSize))
		}
	}
	if !t.haveKnown {
		have, err := haveBlocks(t.f, &t.meta)
		if err != nil {
			return err
		}
		e.mu.Lock()
		t.have, t.haveKnown = have, true
		if t.meta.streamed() {
			t.got = make([]hash32, t.meta.blocks())
		}
		e.mu.Unlock()
		e.log.Info("partial resumed", "peer", t.key.peer, "path", t.meta.Path, "have", have.count(), "of", have.n)
	}
	return nil
}

// ownedIn returns transfer k if p owns it, claiming an idle one (its fd was
// closed for idleness) again.
func (e *Engine) ownedIn(p *peerConn, k inKey) *inTransfer {
	e.mu.Lock()
	t := e.in[k]
	owned := t != nil && t.owner == p
	idle := t != nil && t.owner == nil
	e.mu.Unlock()
	if owned {
		return t
	}
	if idle {
		if t, _, err := e.claimIn(p, k); err == nil {
			return t
		}
	}
	return nil
}

// onChunk verifies one block, in buf, and hands it to the write-behind.
// Bad chunks are dropped: the receiver asks for them again after DONE.
func (e *Engine) onChunk(p *peerConn, wb *writeBehind, m *chunkMsg, buf []byte) {
	if !e.checkChunk(p, m) {
		p.bufs.put(buf)
		return
	}
	wb.settle(e, p) // may abort the transfer: look it up after
	t := e.ownedIn(p, inKey{p.id, m.ID})
	if t == nil {
		p.bufs.put(buf)
		return
	}
	wb.start(blockWrite{t: t, index: m.Index, data: m.Data, buf: buf})
}

// checkChunk reports whether m is a block of a transfer p owns whose hash
// is right (or, streamed, recorded for DONE).
func (e *Engine) checkChunk(p *peerConn, m *chunkMsg) bool {
	t := e.ownedIn(p, inKey{p.id, m.ID})
	if t == nil {
		e.log.Debug("chunk for unknown transfer", "peer", p.id, "id", m.ID.String())
		return false
	}
	n := t.meta.blocks()
	if int(m.Index) >= n || len(m.Data) != blockLen(t.meta.Size, t.meta.BlockSize, m.Index) {
		e.log.Debug("chunk out of range", "peer", p.id, "path", t.meta.Path, "index", m.Index, "len", len(m.Data))
		return false
	}
	sum := blockSum(m.Data)
	if t.meta.streamed() {
		t.got[m.Index] = sum // checked when the manifest comes with DONE
		return true
	}
	if sum != t.meta.Blocks[m.Index] {
		err := &TransferError{Peer: p.id.Short(), Path: t.meta.Path, Op: "verify block",
			Err: fmt.Errorf("block %d: %w", m.Index, ErrChecksum)}
		e.log.Warn("block dropped", "peer", p.id, "err", err)
		e.noteError(err)
		return false
	}
	return true
}

// onDone finishes a transfer whose blocks are all present, or asks again
// for the missing ones (at most maxResendRounds times).
func (e *Engine) onDone(p *peerConn, m *doneMsg) {
	k := inKey{p.id, m.ID}
	t := e.ownedIn(p, k)
	if t == nil {
		e.mu.Lock()
		_, done := e.completed[k]
		e.mu.Unlock()
		if done {
			e.reply(p, (&ackMsg{ID: m.ID}).encode())
		}
		return
	}
	if err := e.doneManifest(p, t, m); err != nil {
		e.failIn(p, t, "verify manifest", err)
		return
	}
	e.mu.Lock()
	complete := t.have.count() == t.have.n
	have := bitmap{n: t.have.n, bits: append([]byte(nil), t.have.bits...)}
	t.rounds++
	rounds := t.rounds
	e.mu.Unlock()
	switch {
	case complete:
		e.finishIn(p, t)
	case rounds > maxResendRounds:
		e.failIn(p, t, "receive", fmt.Errorf("blocks still missing after %d rounds: %w", maxResendRounds, ErrChecksum))
	default:
		e.reply(p, (&acceptMsg{ID: m.ID, Have: have}).encode())
	}
}

// failIn aborts an inbound transfer: REJECT with the reason, delete the
// partial. The node keeps working.
func (e *Engine) failIn(p *peerConn, t *inTransfer, op string, err error) {
	terr := &TransferError{Peer: p.id.Short(), Path: t.meta.Path, Op: op, Err: err}
	e.log.Warn("transfer aborted", "peer", p.id, "err", terr)
	e.noteError(terr)
	e.dropPartial(t)
	reason := err.Error()
	if isNoSpace(err) {
		reason = fmt.Sprintf("no space left on %s's disk", e.selfName())
	}
	e.reject(p, t.key.id, ioCode(err), reason)
}

// ioCode maps a local error to a REJECT code.
func ioCode(err error) rejectCode {
	switch {
	case isNoSpace(err), errors.Is(err, ErrNoSpace):
		return rejectNoSpace
	case errors.Is(err, ErrInvalidName):
		return rejectName
	}
	return rejectIO
}

// dropPartial forgets a transfer and deletes its files.
func (e *Engine) dropPartial(t *inTransfer) {
	e.mu.Lock()
	t.closeFile()
	t.owner = nil
	if e.in[t.key] == t {
		delete(e.in, t.key)
	}
	e.mu.Unlock()
	os.Remove(e.partPath(t.key))
	os.Remove(e.metaPath(t.key))
}

// closePeerFiles releases every transfer a stopping receiver owns: no fd
// stays open on a partial after its peer disconnects.
func (e *Engine) closePeerFiles(p *peerConn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.in {
		if t.owner == p {
			t.closeFile()
			t.owner = nil
		}
	}
}

// closeIdle releases p's transfers untouched since cutoff.
func (e *Engine) closeIdle(p *peerConn, cutoff time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.in {
		if t.owner == p && t.last.Before(cutoff) {
			t.closeFile()
			t.owner = nil
		}
	}
}
