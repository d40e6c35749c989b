package sync

import (
	"fmt"
	"os"

	"github.com/meshfs/meshfs/internal/atomicfile"
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

// streamHashes are the block hashes of a record being hashed as it is
// sent, shared by its senders. Guarded by Engine.mu.
type streamHashes struct {
	sums  []hash32
	known bitmap
}

// streamed reports whether rec is still without its manifest.
func (e *Engine) streamed(rec *outRecord) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return rec.Manifest.Blocks == nil && rec.Manifest.Size > 0
}

// manifestOf returns rec's manifest; its block list is nil until a
// streamed record has been read once.
func (e *Engine) manifestOf(rec *outRecord) manifest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return rec.Manifest
}

// streamSum returns the hash of block i of rec, whose bytes are data,
// hashing them unless another sender of rec already did.
func (e *Engine) streamSum(rec *outRecord, i int, data []byte) hash32 {
	e.mu.Lock()
	if rec.Manifest.Blocks != nil {
		h := rec.Manifest.Blocks[i]
		e.mu.Unlock()
		return h
	}
	if rec.stream == nil {
		n := int(blockCount(uint64(rec.Manifest.Size), uint32(rec.Manifest.BlockSize)))
		rec.stream = &streamHashes{sums: make([]hash32, n), known: newBitmap(n)}
	}
	s := rec.stream
	if s.known.has(i) {
		h := s.sums[i]
		e.mu.Unlock()
		return h
	}
	e.mu.Unlock()
	h := blockSum(data)
	e.mu.Lock()
	s.sums[i] = h
	s.known.set(i)
	e.mu.Unlock()
	return h
}

// finishStream completes rec's manifest once every block was hashed, checks
// that file still is the version the record describes, and stores the
// record. Another sender may have completed it first.
func (e *Engine) finishStream(rec *outRecord, file *os.File) (manifest, error) {
	fi, err := file.Stat()
	if err != nil || !identityOf(fi).sameFile(rec.Ident) {
		return manifest{}, errChanged
	}
	e.mu.Lock()
	if rec.Manifest.Blocks == nil {
		s := rec.stream
		if s == nil || s.known.count() != s.known.n {
			e.mu.Unlock()
			return manifest{}, fmt.Errorf("stream of %s: blocks left unhashed", rec.Rel)
		}
		rec.Manifest.Blocks = s.sums
		rec.Manifest.FileHash = fileHashOf(uint64(rec.Manifest.Size), uint32(rec.Manifest.BlockSize), s.sums)
		rec.stream = nil
	}
	m := rec.Manifest
	e.mu.Unlock()
	if err := e.saveRecord(rec); err != nil {
		e.log.Warn("delivery record not saved", "path", rec.Rel, "err", err)
	}
	return m, nil
}

// doneManifest applies the manifest a DONE carries. A DONE without one is
// an error while the transfer is still streamed.
func (e *Engine) doneManifest(p *peerConn, t *inTransfer, m *doneMsg) error {
	if len(m.Blocks) > 0 {
		return e.adoptManifest(p, t, m.FileHash, m.Blocks)
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
func (e *Engine) adoptManifest(p *peerConn, t *inTransfer, fileHash hash32, blocks []hash32) error {
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
	meta.FileHash, meta.Blocks = fileHash, blocks
	if err := atomicfile.WriteJSON(e.metaPath(t.key), &meta); err != nil {
		return err
	}
	e.mu.Lock()
	t.meta = meta
	dropped := 0
	for i, h := range t.got {
		if t.have.has(i) && h != blocks[i] {
			t.have.clear(i)
			dropped++
		}
	}
	t.got = nil
	e.mu.Unlock()
	if dropped > 0 {
		err := &TransferError{Peer: p.id.Short(), Path: meta.Path, Op: "verify block",
			Err: fmt.Errorf("%d blocks differ from the manifest: %w", dropped, ErrChecksum)}
		e.log.Warn("blocks dropped", "peer", p.id, "err", err)
		e.noteError(err)
	}
	return nil
}
