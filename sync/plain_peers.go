package sync

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"time"
)

// plainPeersLoop owns Dir/peers: right after start and every PeersRefresh
// it renders the table and rewrites the file if the table changed or the
// file is gone.
func (f *Folder) plainPeersLoop(ctx context.Context) {
	tmp := filepath.Join(f.dir, ".peers.meshfs-tmp")
	var last []byte
	written := false
	refresh := func() {
		table := f.cfg.Syncer.PeersTable()
		if written && bytes.Equal(table, last) && plainExists(f.peers) {
			return
		}
		if err := plainWriteAtomic(f.peers, tmp, table, 0o644); err != nil {
			f.log.Warn("rewrite peers file", "err", err)
			return
		}
		last, written = bytes.Clone(table), true
	}
	refresh()
	tick := time.NewTicker(f.cfg.PeersRefresh)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			refresh()
		case <-ctx.Done():
			return
		}
	}
}

// plainExists reports whether path names something.
func plainExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
