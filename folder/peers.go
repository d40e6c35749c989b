package folder

import (
	"bytes"
	"context"
	"os"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
)

// peersLoop owns Dir/peers: right after start and every PeersRefresh
// it renders the table and rewrites the file if the table changed or the
// file is gone. Then it also signals each of members (without blocking;
// one pending signal is enough): the member set changes only with the
// table, so the chat loop and the box loop read Conversations again only
// then and need no timer of their own.
func (f *Tree) peersLoop(ctx context.Context, members ...chan<- struct{}) {
	var last []byte
	written := false
	refresh := func() {
		table := f.cfg.Syncer.PeersTable()
		if written && bytes.Equal(table, last) && exists(f.peers) {
			return
		}
		for _, m := range members {
			select {
			case m <- struct{}{}:
			default:
			}
		}
		if err := atomicfile.Write(f.peers, table, 0o644); err != nil {
			f.log.Warn("peers file not updated", "err", err, "fix", "check free space and permissions of the folder; retried")
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

// exists reports whether path names something.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
