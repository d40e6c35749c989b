package sync

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/internal/present"
	"github.com/meshfs/meshfs/mesh"
)

// receiver handles one connection's OFFER, CHUNK and DONE messages in
// order, on one goroutine per connection: it answers each OFFER, writes
// verified blocks into the partial (through its write-behind), and on DONE
// verifies the whole file and places it in the inbox.
type receiver struct {
	in *inbound
	p  *peerConn
	wb *writeBehind
	// authors maps the transfers offered on this connection to their
	// authors: CHUNK, DONE and ATTR name only the transfer, and a relay
	// passes on files of other members (relay.go).
	authors map[transferID]mesh.PeerID
}

func newReceiver(in *inbound, p *peerConn) *receiver {
	return &receiver{in: in, p: p, authors: map[transferID]mesh.PeerID{}}
}

// key is the inbound key of transfer id as offered on this connection.
func (r *receiver) key(id transferID) inKey {
	if a, ok := r.authors[id]; ok {
		return inKey{a, id}
	}
	return inKey{r.p.id, id}
}

// run handles one peer's OFFER, CHUNK and DONE messages in order.
func (r *receiver) run() {
	background()
	defer r.in.release(r.p)
	r.wb = newWriteBehind(r.in)
	defer r.wb.stop(r)
	// The tick runs only while this member sends a transfer here, and
	// then looks for a stall (sources.go) as often as one can begin.
	every := max(min(r.in.cfg.InboundIdle/2, r.in.cfg.SourceStall), 10*time.Millisecond)
	tick := time.NewTimer(every)
	defer tick.Stop()
	for {
		tick.Reset(every)
		if !r.busy() {
			tick.Stop() // idle: nothing to settle or expire until a message comes
		}
		select {
		case <-r.p.ctx.Done():
			return
		case in := <-r.p.toReceive:
			if c, ok := in.msg.(*chunkMsg); ok {
				r.onChunk(c, in.buf)
				continue
			}
			r.wb.settle(r) // OFFER and DONE see every block written
			r.receive(in)
		case err := <-r.wb.finished():
			r.wb.applied(r, err)
		case <-tick.C:
			r.wb.settle(r)
			now := time.Now()
			r.in.closeIdle(r.p, now.Add(-r.in.cfg.InboundIdle))
			r.in.unstall(r.p, now)
			for t, s := range r.in.idleSources(r.p) {
				r.in.keepAlive(t, s)
			}
		}
	}
}

// receive handles an OFFER or a DONE (CHUNKs go to onChunk).
func (r *receiver) receive(in inMsg) {
	switch m := in.msg.(type) {
	case *offerMsg:
		r.onOffer(m)
	case *doneMsg:
		r.onDone(m)
	case *attrMsg:
		r.onAttr(m)
	default:
		r.in.log.Debug("unexpected message", "peer", r.p.id, "type", fmt.Sprintf("%T", m))
	}
}

// reply sends a control message to p; failures mean the peer is gone.
// A receiver whose connection ended sends nothing: the transport
// addresses members, not connections, and its member's next connection
// must not hear about what this one was doing.
func (r *receiver) reply(data []byte) {
	if r.p.ctx.Err() != nil {
		return
	}
	if err := r.in.transport().SendBytes(r.p.ctx, r.p.id, data); err != nil {
		r.in.log.Debug("reply not sent", "peer", r.p.id, "err", err)
	}
}

// refuse answers an OFFER or ends a transfer with REJECT. The code and the
// reason come from err through peerReason: the member is told what it
// can act on, never a local path or OS error text, which stay in the log.
func (r *receiver) refuse(id transferID, err error) {
	r.reply((&rejectMsg{ID: id, Code: ioCode(err), Reason: r.in.peerReason(err)}).encode())
}

// onOffer validates an OFFER before touching the disk, then answers ACK
// (already done), ACCEPT with the blocks held, or REJECT.
func (r *receiver) onOffer(m *offerMsg) {
	k := inKey{m.Author, m.ID}
	r.in.mu.Lock()
	_, done := r.in.completed[k]
	_, known := r.in.transfers[k]
	r.in.mu.Unlock()
	if done || m.Author == r.in.transport().ID() { // ours, passed back: we have it
		r.reply((&ackMsg{ID: m.ID}).encode())
		return
	}
	if err := r.in.checkOffer(r.p.id, m); err != nil {
		r.in.log.Info("offer refused", "peer", r.p.id, "author", m.Author, "path", m.Path, "code", ioCode(err).String(), "err", err)
		r.refuse(m.ID, err)
		return
	}
	r.authors[m.ID] = m.Author
	if m.Type != entryFile {
		r.onEntry(m)
		return
	}
	if !known && r.in.awaitCreating(r.p.ctx, k) {
		if r.p.ctx.Err() != nil {
			return // this connection ended while it waited: its member offers again on the next
		}
		known = true // another member's offer made it: this one may join (sources.go)
	}
	if !known {
		if err := r.admit(m); err != nil {
			r.in.log.Info("offer refused", "peer", r.p.id, "path", m.Path, "code", ioCode(err).String(), "err", err)
			r.refuse(m.ID, err)
			return
		}
	}
	t, src, err := r.in.claim(r.p, k)
	if errors.Is(err, errCompleted) {
		r.reply((&ackMsg{ID: m.ID}).encode())
		return
	}
	if err != nil {
		r.in.log.Debug("offer refused for now", "peer", r.p.id, "path", m.Path, "code", ioCode(err).String(), "err", err)
		r.refuse(m.ID, err)
		return
	}
	if !t.sameManifest(m) {
		r.refuse(m.ID, refused(rejectIO, "transfer id reused with a different manifest"))
		return
	}
	if !known {
		r.passOnWhileReceiving(t, m)
	}
	if !m.streamed() {
		if err := r.adoptManifest(t, m.FileHash, m.Blocks, m.Sig); err != nil {
			r.failIn(t, "verify manifest", err)
			return
		}
	}
	r.askFrom(t, src)
}

// askFrom asks src for the blocks it is to send, now that its member
// offered the file (again: its sender starts over): every missing block
// for a whole source, else its windows (sources.go). A file held whole
// already (empty, or resumed complete) is asked for nothing: the DONE
// that answers finishes it.
func (r *receiver) askFrom(t *inTransfer, src *source) {
	r.in.mu.Lock()
	have := bitmap{n: t.have.n, bits: slices.Clone(t.have.bits)}
	r.in.mu.Unlock()
	if src.whole || have.count() == have.n {
		r.reply((&acceptMsg{ID: t.key.id, Have: have}).encode())
		return
	}
	r.in.restartSource(t, src)
	r.in.ask(t, src)
	r.in.tellSources(t)
}

// onEntry places a folder or a link and ACKs, or refuses it.
func (r *receiver) onEntry(m *offerMsg) {
	shown, err := r.in.placeEntry(m.Author, m)
	if err != nil {
		r.in.log.Info("offer refused", "peer", r.p.id, "path", m.Path, "type", m.Type.String(), "code", ioCode(err).String(), "err", err)
		r.refuse(m.ID, err)
		return
	}
	r.in.changed(shown)
	r.in.completeEntry(inKey{m.Author, m.ID}, m, r.p.id)
	r.reply((&ackMsg{ID: m.ID}).encode())
	r.in.log.Info(m.Type.String()+" received", "peer", r.p.id, "path", shown)
}

// admit checks a new OFFER and creates its partial, or says why not.
func (r *receiver) admit(m *offerMsg) error {
	clean, err := validatePath(m.Path)
	if err != nil {
		return err
	}
	r.in.dropSuperseded(r.p, m.Author, clean, m.ID)
	if m.Size > uint64(r.in.cfg.MaxFileSize) {
		return refused(rejectTooBig, fmt.Sprintf("%s is over the %s limit", present.IEC(m.Size), present.IEC(uint64(r.in.cfg.MaxFileSize))))
	}
	if err := r.in.checkQuota(m.Author, m.Size); err != nil {
		return err
	}
	if err := r.in.checkSpace(m.Size); err != nil {
		return err
	}
	meta := partialMeta{
		Hash: blockHashName, Peer: m.Author.String(), ID: m.ID, Path: clean, Size: m.Size, BlockSize: m.BlockSize,
		Mode: m.Mode, MTime: m.MTime, FileHash: m.FileHash, Blocks: m.Blocks, Started: time.Now(), Replaces: m.Replaces,
		Sig: m.Sig,
	}
	if !m.To.IsZero() {
		meta.To = m.To.String()
	}
	return r.in.createPartial(inKey{m.Author, m.ID}, meta)
}

// passOnWhileReceiving lets the members that lack a large file have it
// from here while it comes in (relay.go), once this member is receiving
// it: the OFFER was signed, and a transfer that is not running here would
// only hold up whoever took it from us.
func (r *receiver) passOnWhileReceiving(t *inTransfer, m *offerMsg) {
	if m.streamed() || int64(m.Size) < r.in.cfg.StreamMinSize || r.in.mine(&t.meta) {
		return
	}
	rel, _ := filepath.Rel(r.in.cfg.Root, r.in.partPath(t.key))
	r.in.done(received{key: t.key, from: r.p.id, meta: t.meta, typ: entryFile, placed: filepath.ToSlash(rel), partial: true})
}

// onChunk checks one block or piece, in buf, and hands it to the
// write-behind. Bad chunks are dropped: the receiver asks for them again
// after DONE. It hashes before it waits for the write in flight, so the
// two overlap (writebehind.go).
func (r *receiver) onChunk(m *chunkMsg, buf []byte) {
	w, ok := r.checkChunk(m)
	if !ok {
		r.p.bufs.put(buf)
		return
	}
	r.wb.settle(r) // may abort the transfer: look it up after
	if w.t, _ = r.in.owned(r.p, r.key(m.ID)); w.t == nil {
		r.p.bufs.put(buf)
		return
	}
	if w.piece {
		// The block on disk is about to change: held again only once
		// its last piece is verified and written.
		r.in.mu.Lock()
		w.t.have.clear(int(w.index))
		r.in.mu.Unlock()
	}
	w.buf = buf
	r.wb.start(w)
}

// checkChunk checks m, a block or a piece of one, of a transfer p sends
// and was asked for, and returns its write. A whole block is written only if its hash is
// right (or, streamed, recorded for DONE); a piece is written as it comes
// and its block held once the last piece matched (checkPiece). A CHUNK
// without data is a block of zeros, checked as such: against a manifest
// that says otherwise it is dropped like any corrupt block.
func (r *receiver) checkChunk(m *chunkMsg) (blockWrite, bool) {
	t, src := r.in.owned(r.p, r.key(m.ID))
	if t == nil {
		r.in.log.Debug("chunk for unknown transfer", "peer", r.p.id, "id", m.ID.String())
		return blockWrite{}, false
	}
	if int(m.Index) >= t.meta.blocks() {
		r.in.log.Debug("chunk out of range", "peer", r.p.id, "path", t.meta.Path, "index", m.Index)
		return blockWrite{}, false
	}
	r.in.mu.Lock()
	asked := src.asks(int(m.Index))
	if asked {
		src.noteBlock(time.Now())
	}
	r.in.mu.Unlock()
	if !asked {
		// Not asked of this member (any more): another source sends it,
		// or it came back held already.
		r.in.log.Debug("chunk not asked for", "peer", r.p.id, "path", t.meta.Path, "index", m.Index)
		return blockWrite{}, false
	}
	n := blockLen(t.meta.Size, t.meta.BlockSize, m.Index)
	w := blockWrite{t: t, index: m.Index, off: int(m.Offset), data: m.Data}
	var sum hash32
	switch {
	case len(m.Data) == 0: // at offset 0 (decodeChunk)
		src.dropBlock(m.Index)
		w.zeros, sum = n, zeroSum(n)
	case m.Offset == 0 && len(m.Data) == n:
		src.dropBlock(m.Index)
		sum = blockSum(m.Data)
	case int(m.Offset)+len(m.Data) > n:
		r.in.log.Debug("chunk beyond its block", "peer", r.p.id, "path", t.meta.Path, "index", m.Index,
			"offset", m.Offset, "len", len(m.Data))
		return blockWrite{}, false
	default:
		return r.checkPiece(src, w, n)
	}
	w.held = r.checkSum(t, m.Index, sum)
	return w, w.held
}

// checkPiece feeds a piece of an n-byte block to the block's running
// hash. A piece out of order is dropped (its block starts over); the last
// piece is written only if the block's hash is right, and then makes the
// block held.
func (r *receiver) checkPiece(src *source, w blockWrite, n int) (blockWrite, bool) {
	t := w.t
	b := src.feedPiece(w.index, w.off, w.data)
	if b == nil {
		r.in.log.Debug("piece out of order", "peer", r.p.id, "path", t.meta.Path, "index", w.index, "offset", w.off)
		return blockWrite{}, false
	}
	w.piece = true
	if b.next < n {
		return w, true
	}
	src.dropBlock(w.index)
	w.held = r.checkSum(t, w.index, sumOf(b.h))
	return w, w.held
}

// checkSum reports whether sum is block i's hash; streamed, it records it
// for DONE. A block that differs is counted and logged.
func (r *receiver) checkSum(t *inTransfer, i uint32, sum hash32) bool {
	if t.meta.streamed() {
		t.got[i] = sum // checked when the manifest comes with DONE
		return true
	}
	if sum != t.meta.Blocks[i] {
		err := &TransferError{Peer: r.p.id.Short(), Path: t.meta.Path, Op: "verify block",
			Err: fmt.Errorf("block %d: %w", i, ErrChecksum)}
		r.in.log.Warn("damaged block dropped", "peer", r.p.id, "member", r.in.peers.displayName(r.p.id), "path", t.meta.Path, "err", err, "fix", "nothing: the block is asked for again")
		r.in.noteError(err)
		r.in.bad.add(r.p.id)
		return false
	}
	return true
}

// onDone ends what the source was asked for: a window, or every missing
// block of a whole source, which is asked again for the ones still
// missing (at most maxResendRounds times). The transfer finishes once
// every block is held.
func (r *receiver) onDone(m *doneMsg) {
	k := r.key(m.ID)
	t, src := r.in.owned(r.p, k)
	if t == nil {
		r.in.mu.Lock()
		_, done := r.in.completed[k]
		r.in.mu.Unlock()
		if done {
			r.reply((&ackMsg{ID: m.ID}).encode())
		}
		return
	}
	if err := r.doneManifest(t, m); err != nil {
		r.failIn(t, "verify manifest", err)
		return
	}
	if !src.whole {
		r.onWindowDone(t, src)
		return
	}
	r.in.mu.Lock()
	complete := t.have.count() == t.have.n
	t.finishing = complete
	have := bitmap{n: t.have.n, bits: slices.Clone(t.have.bits)}
	t.rounds++
	rounds := t.rounds
	r.in.mu.Unlock()
	switch {
	case complete:
		r.finishIn(t)
	case rounds > maxResendRounds:
		r.failIn(t, "receive", fmt.Errorf("blocks still missing after %d rounds: %w", maxResendRounds, ErrChecksum))
	default:
		r.reply((&acceptMsg{ID: m.ID, Have: have}).encode())
	}
}

// onWindowDone ends src's oldest window. Its blocks still missing go back
// to be asked for, of another source first; a source whose windows came
// back incomplete more than maxResendRounds times is dropped, and the
// file comes from the others.
func (r *receiver) onWindowDone(t *inTransfer, src *source) {
	r.in.mu.Lock()
	missing := t.endWindowsLocked(src, min(len(src.windows), 1), true)
	if missing > 0 {
		src.misses++
	}
	complete := t.have.count() == t.have.n && !t.finishing
	t.finishing = t.finishing || complete
	tooMany := src.misses > maxResendRounds
	r.in.mu.Unlock()
	switch {
	case complete:
		r.finishIn(t)
	case tooMany:
		r.dropSource(t, src)
	default:
		r.in.ask(t, src)
		if missing > 0 {
			r.in.askIdle(t)
		}
		r.in.tellSources(t)
	}
}

// dropSource stops taking t from this connection's member, whose blocks
// kept failing their checks: it is refused for now (it may offer again
// later), and what it was asked for goes to the other sources.
func (r *receiver) dropSource(t *inTransfer, src *source) {
	name := r.in.peers.displayName(r.p.id)
	r.in.log.Warn("member's blocks keep failing their checks; file taken from others", "peer", r.p.id, "member", name,
		"path", t.meta.Path, "windows", src.misses, "fix", "nothing: if it repeats, check "+name+"'s disk and meshfs version")
	r.in.mu.Lock()
	_, more := t.removeSourceLocked(r.p)
	r.in.mu.Unlock()
	r.refuse(t.key.id, refused(rejectIO, fmt.Sprintf("blocks still missing after %d rounds", maxResendRounds)))
	delete(r.authors, t.key.id)
	if more {
		r.in.askIdle(t)
	}
	r.in.tellSources(t)
}

// failIn aborts an inbound transfer: REJECT with the reason to each of
// its sources, delete the partial. The node keeps working.
func (r *receiver) failIn(t *inTransfer, op string, err error) {
	terr := &TransferError{Peer: r.p.id.Short(), Path: t.meta.Path, Op: op, Err: err}
	r.in.log.Warn("incoming file abandoned", "peer", r.p.id, "member", r.in.peers.displayName(r.p.id), "path", t.meta.Path, "err", terr, "fix", receiveFix(err, r.in.peers.displayName(r.p.id)))
	r.in.noteError(terr)
	srcs := r.in.sourcesOf(t)
	r.in.dropPartial(t)
	reject := (&rejectMsg{ID: t.key.id, Code: ioCode(err), Reason: r.in.peerReason(err)}).encode()
	r.reply(reject)
	r.in.tellAll(srcs, r.p, reject)
	delete(r.authors, t.key.id)
}

// finishIn verifies a complete partial, makes it durable and renames it
// into inbox/<peer-folder>/ without replacing anything, then ACKs.
func (r *receiver) finishIn(t *inTransfer) {
	if err := verifyWhole(&t.meta); err != nil {
		if r.p.ctx.Err() == nil { // a disconnect keeps the partial for resume
			r.failIn(t, "verify file", err)
			return
		}
		r.in.mu.Lock()
		t.finishing = false
		r.in.mu.Unlock()
		return
	}
	if err := r.in.makeDurable(t); err != nil {
		r.failIn(t, "sync file", err)
		return
	}
	failpoint("after-fsync")
	place, private := r.in.placeFinal, t.meta.To != ""
	if private {
		place = r.in.placePrivate
	}
	shown, err := place(t)
	if errors.Is(err, errBox) {
		r.in.log.Warn("private file dropped", "peer", r.p.id, "author", r.in.peerName(t.key.peer), "err", err,
			"fix", "nothing here: its author's build sealed it wrong or sealed another member's file; if it repeats, ask them")
		r.in.completeIn(t, r.p.id) // taken, so it is not offered again; nothing placed, nothing passed on
		r.reply((&ackMsg{ID: t.key.id}).encode())
		return
	}
	if err != nil {
		r.failIn(t, "rename", err)
		return
	}
	r.in.changed(shown)
	srcs := r.in.sourcesOf(t)
	r.in.completeIn(t, r.p.id)
	ack := (&ackMsg{ID: t.key.id}).encode()
	r.reply(ack)
	r.in.tellAll(srcs, r.p, ack)
	delete(r.authors, t.key.id)
	name, via := r.in.peerName(t.key.peer), ""
	if t.key.peer != r.p.id {
		via = " via " + r.in.peers.displayName(r.p.id)
	}
	if private && !r.in.mine(&t.meta) {
		r.in.log.Info("private file carried", "peer", r.p.id, "author", name, "via", via, "for", r.in.peerName(t.meta.to()), "bytes", t.meta.Size)
		return // shown nowhere: it is another member's
	}
	r.in.log.Info("file received", "peer", r.p.id, "name", name, "via", via, "path", shown, "bytes", t.meta.Size)
	what := "sent"
	if private {
		what = "sent you privately"
	}
	r.in.event(fmt.Sprintf("%s %s %s (%s)%s -> %s", name, what, path.Base(shown), present.SI(t.meta.Size), via, shown))
}

// doneManifest applies the manifest a DONE carries. A DONE without one is
// an error while the transfer is still streamed.
func (r *receiver) doneManifest(t *inTransfer, m *doneMsg) error {
	if len(m.Blocks) > 0 {
		if t.meta.streamed() {
			if err := r.in.checkDoneSig(r.p.id, t, m); err != nil {
				return err
			}
		}
		return r.adoptManifest(t, m.FileHash, m.Blocks, m.Sig)
	}
	if t.meta.streamed() {
		return fmt.Errorf("DONE without the block hashes of a streamed file: %w", errProto)
	}
	return nil
}

// adoptManifest gives a streamed transfer its manifest. A block written
// whose hash differs is dropped, to be asked for again like a corrupt
// chunk, and the sidecar is stored with the manifest so that a restart can
// resume by re-hashing. A transfer that has its manifest accepts only the
// same one again.
func (r *receiver) adoptManifest(t *inTransfer, fileHash hash32, blocks []hash32, sig []byte) error {
	if !t.meta.streamed() {
		if fileHash != t.meta.FileHash {
			return fmt.Errorf("manifest differs from the one offered: %w", ErrChecksum)
		}
		return nil
	}
	if len(blocks) != t.meta.blocks() {
		return fmt.Errorf("%d block hashes for %d blocks: %w", len(blocks), t.meta.blocks(), errProto)
	}
	if fileHashOf(t.meta.Size, t.meta.BlockSize, blocks) != fileHash {
		return fmt.Errorf("file hash does not match its block hashes: %w", ErrChecksum)
	}
	meta := t.meta
	meta.FileHash, meta.Blocks, meta.Sig = fileHash, blocks, sig
	if err := atomicfile.WriteJSON(r.in.metaPath(t.key), &meta); err != nil {
		return err
	}
	r.in.mu.Lock()
	t.meta = meta
	dropped := 0
	for i, h := range t.got {
		if t.have.has(i) && h != blocks[i] {
			t.have.clear(i)
			dropped++
		}
	}
	t.got = nil
	r.in.mu.Unlock()
	if dropped > 0 {
		err := &TransferError{Peer: r.p.id.Short(), Path: meta.Path, Op: "verify block",
			Err: fmt.Errorf("%d blocks differ from the manifest: %w", dropped, ErrChecksum)}
		r.in.log.Warn("damaged blocks dropped", "peer", r.p.id, "member", r.in.peers.displayName(r.p.id), "path", meta.Path, "err", err, "fix", "nothing: the blocks are asked for again")
		r.in.noteError(err)
	}
	return nil
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
	if c, ok := msg.(*chunkMsg); ok && len(c.Data) == 0 {
		c.Data = nil // a zero block: no bytes to keep, no buffer taken
	} else if ok {
		if in.buf = p.bufs.get(p.ctx, len(c.Data)); in.buf == nil {
			return inMsg{}, p.ctx.Err()
		}
		c.Data = in.buf[:copy(in.buf, c.Data)]
	}
	return in, nil
}

// busy reports whether the receiver's tick has work: a block write in
// flight, or a transfer of this peer's that may go idle.
func (r *receiver) busy() bool {
	if r.wb.cur != nil {
		return true
	}
	r.in.mu.Lock()
	defer r.in.mu.Unlock()
	for _, t := range r.in.transfers {
		if t.sources[r.p] != nil {
			return true
		}
	}
	return false
}
