package sync

import (
	"fmt"
	"sync"
	"time"

	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// This file is the room's front: Say, the event lines, and the chat
// store's lazy syncer. How lines travel between members is room.go.

// ChatLogPath returns the rendered chat log (StateDir/chat.log). It exists
// from New on and only ever grows.
func (e *Engine) ChatLogPath() string { return e.chat.LogPath() }

// Say appends one line from the local user to the log, queues it for
// every member and returns once the line is on disk: one fdatasync of the
// chat wal, shared with every line written meanwhile (chat.Store.Stage).
// The line is on its way while this disk syncs; its sequence number was
// reserved on disk first, so a crash cannot hand it to another line.
// It rejects text over chat.MaxBytes or not UTF-8 (chat.ErrTooLong,
// chat.ErrBadUTF8); control characters and escape sequences are stripped,
// and an empty result is ignored.
func (e *Engine) Say(text string) error {
	m, ok, durable, err := e.chat.Stage(text)
	if err != nil {
		return fmt.Errorf("say: %w", err)
	}
	if !ok {
		return nil
	}
	e.own.push(m) // on its way while this disk syncs
	if err := durable(); err != nil {
		return fmt.Errorf("say: %w", err)
	}
	return nil
}

// chatSyncDelay is how long the room lets received lines and events sit
// unsynced: their durability is lazy (a lost received line is asked for
// again), and an fsync per line would compete for the disk with the fsyncs
// that own lines wait on.
const chatSyncDelay = time.Second

// chatSyncLoop syncs the chat store chatSyncDelay after it was written to,
// until the engine stops (Close syncs what is left).
func (e *Engine) chatSyncLoop(dirty <-chan struct{}) {
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-dirty:
		}
		t.Reset(chatSyncDelay)
		select {
		case <-e.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := e.chat.Sync(); err != nil {
			e.log.Warn("chat history not written to disk", "err", err,
				"fix", fixState+"; retried at the next message")
		}
	}
}

// chatEvent appends an event line ("* text") to the rendered chat log.
func (e *Engine) chatEvent(text string) {
	e.toRoom(roomJob{event: text})
}

// ownQueue holds own lines for the room loop. It never blocks: Say runs in
// a FUSE callback. Past its bound the oldest is dropped from the queue
// (not from the store): members get it when they next ask (HAVE).
type ownQueue struct {
	mu     sync.Mutex
	items  []record.Chat
	signal chan struct{}
}

// maxOwnQueued bounds the own lines waiting for the room loop.
const maxOwnQueued = 1024

func newOwnQueue() ownQueue { return ownQueue{signal: make(chan struct{}, 1)} }

func (q *ownQueue) push(m record.Chat) {
	q.mu.Lock()
	if len(q.items) >= maxOwnQueued {
		q.items = q.items[1:]
	}
	q.items = append(q.items, m)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *ownQueue) take() []record.Chat {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

// badRecords counts, per member, what it sent that did not verify (chat
// records, file manifests, blocks): the peers table shows it ("bad data").
type badRecords struct {
	mu sync.Mutex
	n  map[mesh.PeerID]uint64
}

func (b *badRecords) add(id mesh.PeerID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n == nil {
		b.n = map[mesh.PeerID]uint64{}
	}
	b.n[id]++
}

func (b *badRecords) of(id mesh.PeerID) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n[id]
}
