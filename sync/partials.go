package sync

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/mesh"
)

// Partial files across restarts: their sidecars are read at New, a partial
// is re-hashed before it resumes, and the janitor removes those untouched
// for PartialTTL.

// partialFiles lists the sidecars in the partials folder.
func (ib *inbound) partialFiles() ([]string, error) {
	return filepath.Glob(filepath.Join(ib.partsDir, "*.json"))
}

// loadPartials reads the partials' sidecars at New. A sidecar whose
// partial is gone was renamed into place before a crash: that transfer is
// complete. A partial without a sidecar cannot be resumed and is removed.
func (ib *inbound) loadPartials() error {
	metas, err := ib.partialFiles()
	if err != nil {
		return err
	}
	for _, mp := range metas {
		ib.loadPartial(mp)
	}
	parts, _ := filepath.Glob(filepath.Join(ib.partsDir, "*.part"))
	for _, pp := range parts {
		if _, err := os.Stat(strings.TrimSuffix(pp, ".part") + ".json"); errors.Is(err, fs.ErrNotExist) {
			os.Remove(pp)
		}
	}
	opened, _ := filepath.Glob(filepath.Join(ib.partsDir, "*.open")) // a private file opened before a crash: opened again
	for _, p := range opened {
		os.Remove(p)
	}
	return ib.saveCompleted()
}

// loadPartial loads one sidecar.
func (ib *inbound) loadPartial(metaPath string) {
	var meta partialMeta
	err := atomicfile.ReadJSON(metaPath, &meta)
	peer, perr := mesh.ParsePeerID(meta.Peer)
	if err != nil || perr != nil || (len(meta.Blocks) != meta.blocks() && !meta.streamed()) {
		ib.log.Warn("unfinished incoming file dropped: its state is unreadable", "file", filepath.Base(metaPath), "err", err,
			"fix", "nothing: the member sends it again from the start")
		os.Remove(metaPath)
		return
	}
	k := inKey{peer, meta.ID}
	if meta.Hash != blockHashName {
		// Its sender offers the file again under a new ID.
		ib.log.Info("partial in an unknown format dropped", "path", meta.Path)
		os.Remove(ib.partPath(k))
		os.Remove(metaPath)
		return
	}
	fi, err := os.Stat(ib.partPath(k))
	if errors.Is(err, fs.ErrNotExist) {
		ib.completed[k] = time.Now()
		os.Remove(metaPath)
		return
	}
	last := meta.Started
	if err == nil {
		last = fi.ModTime()
	}
	t := newInTransfer(k, meta)
	t.have, t.last = newBitmap(meta.blocks()), last
	ib.transfers[k] = t
}

// janitorLoop removes partials untouched for PartialTTL, at Start and every
// JanitorInterval.
func (ib *inbound) janitorLoop() {
	tick := time.NewTicker(ib.cfg.JanitorInterval)
	defer tick.Stop()
	for {
		ib.removeStale(time.Now().Add(-ib.cfg.PartialTTL))
		select {
		case <-ib.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// removeStale deletes idle partials last touched before cutoff.
func (ib *inbound) removeStale(cutoff time.Time) {
	ib.mu.Lock()
	var stale []*inTransfer
	for k, t := range ib.transfers {
		if len(t.sources) == 0 && t.last.Before(cutoff) {
			stale = append(stale, t)
			delete(ib.transfers, k)
			t.notifyLocked()
		}
	}
	ib.mu.Unlock()
	for _, t := range stale {
		ib.log.Info("stale partial removed", "peer", t.key.peer, "path", t.meta.Path)
		t.closeFile()
		os.Remove(ib.partPath(t.key))
		os.Remove(ib.metaPath(t.key))
	}
}

// haveBlocks re-hashes a partial and returns the blocks whose content
// matches the manifest: only those count as held. A block that is a hole
// reads as zeros, so it is not read: it holds a zero block. A large block
// is read and hashed a piece at a time (sumAt).
func haveBlocks(f *os.File, meta *partialMeta) (bitmap, error) {
	have := newBitmap(meta.blocks()) // none held if streamed: nothing to check against
	buf := make([]byte, min(meta.BlockSize, pieceSize))
	for i := range meta.Blocks {
		n := blockLen(meta.Size, meta.BlockSize, uint32(i))
		off := int64(i) * int64(meta.BlockSize)
		if !hasData(f, off, n) {
			if zeroSum(n) == meta.Blocks[i] {
				have.set(i)
			}
			continue
		}
		sum, err := sumAt(f, off, n, buf)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return have, err
		}
		if sum == meta.Blocks[i] {
			have.set(i)
		}
	}
	return have, nil
}
