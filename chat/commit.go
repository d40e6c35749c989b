package chat

import (
	"fmt"
	"sync"
)

// groupCommit makes own lines durable with as few fsyncs as the disk
// allows. A writer whose record is not yet on disk either starts an
// fdatasync of the wal (wal.go), which covers every record written before
// it started, or,
// while one is in flight, waits for it and then for the next. So a line
// waits for at most two fsyncs and never for the rendered log, and lines
// written while the disk is slow share one fsync instead of queueing for
// one each.
type groupCommit struct {
	mu      sync.Mutex
	cond    sync.Cond // L is &mu; broadcast when an fsync ends
	durable uint64    // records known to be on disk
	syncing bool
	// err is the first failed fsync. It sticks: after a failed fsync the
	// kernel may have dropped the dirty pages, and a later fsync that
	// succeeds would claim records that are not on disk.
	err error
}

// waitDurable returns once the wal's first n records are on disk.
func (c *Store) waitDurable(n uint64) error {
	g := &c.group
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.durable < n && g.err == nil {
		if g.syncing {
			g.cond.Wait()
			continue
		}
		g.syncing = true
		// Every record counted here has been written: written rises
		// after the write returns.
		target := c.written.Load()
		g.mu.Unlock()
		err := c.datasync(c.wal)
		g.mu.Lock()
		g.syncing = false
		if err != nil {
			g.err = fmt.Errorf("sync chat wal: %w", err)
		} else {
			g.durable = max(g.durable, target)
		}
		g.cond.Broadcast()
	}
	if g.durable >= n {
		return nil
	}
	return g.err
}
