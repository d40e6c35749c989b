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

// haveBlocks re-hashes a partial and returns the blocks whose content
// matches the manifest: only those count as held.
func haveBlocks(f *os.File, meta *partialMeta) (bitmap, error) {
	have := newBitmap(meta.blocks()) // none held if streamed: nothing to check against
	buf := make([]byte, meta.BlockSize)
	for i := range meta.Blocks {
		n := blockLen(meta.Size, meta.BlockSize, uint32(i))
		_, err := f.ReadAt(buf[:n], int64(i)*int64(meta.BlockSize))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return have, err
		}
		if blockSum(buf[:n]) == meta.Blocks[i] {
			have.set(i)
		}
	}
	return have, nil
}

// loadPartials reads the partials' sidecars at New. A sidecar whose
// partial is gone was renamed into place before a crash: that transfer is
// complete. A partial without a sidecar cannot be resumed and is removed.
func (e *Engine) loadPartials() error {
	metas, err := e.partialFiles()
	if err != nil {
		return err
	}
	for _, mp := range metas {
		e.loadPartial(mp)
	}
	parts, _ := filepath.Glob(filepath.Join(e.partsDir, "*.part"))
	for _, pp := range parts {
		if _, err := os.Stat(strings.TrimSuffix(pp, ".part") + ".json"); errors.Is(err, fs.ErrNotExist) {
			os.Remove(pp)
		}
	}
	return e.saveCompleted()
}

// loadPartial loads one sidecar.
func (e *Engine) loadPartial(metaPath string) {
	var meta partialMeta
	err := atomicfile.ReadJSON(metaPath, &meta)
	peer, perr := mesh.ParsePeerID(meta.Peer)
	if err != nil || perr != nil || (len(meta.Blocks) != meta.blocks() && !meta.streamed()) {
		e.log.Warn("partial sidecar unreadable", "file", filepath.Base(metaPath), "err", err)
		os.Remove(metaPath)
		return
	}
	k := inKey{peer, meta.ID}
	if meta.Hash != blockHashName {
		// Its sender hashes the file again and offers it under a new ID.
		e.log.Info("partial from an older version dropped", "path", meta.Path)
		os.Remove(e.partPath(k))
		os.Remove(metaPath)
		return
	}
	fi, err := os.Stat(e.partPath(k))
	if errors.Is(err, fs.ErrNotExist) {
		e.completed[k] = time.Now()
		os.Remove(metaPath)
		return
	}
	last := meta.Started
	if err == nil {
		last = fi.ModTime()
	}
	e.in[k] = &inTransfer{key: k, meta: meta, have: newBitmap(meta.blocks()), last: last}
}

// janitorLoop removes partials untouched for PartialTTL, at Start and every
// JanitorInterval.
func (e *Engine) janitorLoop() {
	tick := time.NewTicker(e.cfg.JanitorInterval)
	defer tick.Stop()
	for {
		e.removeStale(time.Now().Add(-e.cfg.PartialTTL))
		select {
		case <-e.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// removeStale deletes idle partials last touched before cutoff.
func (e *Engine) removeStale(cutoff time.Time) {
	e.mu.Lock()
	var stale []*inTransfer
	for k, t := range e.in {
		if t.owner == nil && t.last.Before(cutoff) {
			stale = append(stale, t)
			delete(e.in, k)
		}
	}
	e.mu.Unlock()
	for _, t := range stale {
		e.log.Info("stale partial removed", "peer", t.key.peer, "path", t.meta.Path)
		t.closeFile()
		os.Remove(e.partPath(t.key))
		os.Remove(e.metaPath(t.key))
	}
}
