package folder

import (
	"bytes"
	"context"
	"os"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
)

// peersLoop owns Dir/peers: right after start, and then after a wait
// that starts at PeersRefresh and doubles with each render that found the
// table unchanged (up to peersQuietFactor times), it renders the table
// and rewrites the file if the table changed or the file is gone. A
// change, or the engine's MembersChanged, renders at once and brings the
// wait back to PeersRefresh: an idle mesh costs a render every few
// seconds, and a member who connects or leaves shows at once.
//
// After a change it also signals each of members (without blocking; one
// pending signal is enough): the member set changes only with the table,
// so the chat loop and the box loop read Conversations again only then
// and need no timer of their own.
func (f *Tree) peersLoop(ctx context.Context, members ...chan<- struct{}) {
	var last []byte
	written := false
	// refresh reports whether the file is as it should be and unchanged.
	refresh := func() (quiet bool) {
		table := f.cfg.Syncer.PeersTable()
		if written && bytes.Equal(table, last) && exists(f.peers) {
			return true
		}
		for _, m := range members {
			select {
			case m <- struct{}{}:
			default:
			}
		}
		if err := atomicfile.Write(f.peers, table, 0o644); err != nil {
			f.log.Warn("peers file not updated", "err", err, "fix", "check free space and permissions of the folder; retried")
			return false
		}
		last, written = bytes.Clone(table), true
		return false
	}
	refresh()
	wait := f.cfg.PeersRefresh
	tick := time.NewTimer(wait)
	defer tick.Stop()
	for {
		signalled := false
		select {
		case <-tick.C:
		case <-f.cfg.Syncer.MembersChanged():
			tick.Stop()
			signalled = true
		case <-ctx.Done():
			return
		}
		if refresh() && !signalled {
			wait = min(2*wait, peersQuietFactor*f.cfg.PeersRefresh)
		} else {
			wait = f.cfg.PeersRefresh
		}
		tick.Reset(wait)
	}
}

// exists reports whether path names something.
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
