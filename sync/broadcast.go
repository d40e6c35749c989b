package sync

import (
	"sync"

	"github.com/meshfs/meshfs/mesh"
)

// chatItem is work for the broadcaster: an own message for everyone, a
// catch-up for one peer, or a CHAT_HAVE request to one peer.
type chatItem struct {
	chat    mesh.Chat
	all     bool        // broadcast chat
	peer    mesh.PeerID // catch-up / ask target
	after   uint64      // catch-up: send own messages after this seq
	catchUp bool
	ask     bool
}

// chatQueue is the broadcaster's ordered queue. It never blocks: Say runs
// in a FUSE callback. Past its bound the oldest broadcast is dropped (the
// peer recovers it by catch-up on its next connection).
type chatQueue struct {
	mu     sync.Mutex
	items  []chatItem
	limit  int
	signal chan struct{}
}

func (q *chatQueue) init(limit int) {
	q.limit = limit + 64
	q.signal = make(chan struct{}, 1)
}

func (q *chatQueue) push(it chatItem) {
	q.mu.Lock()
	if len(q.items) >= q.limit {
		q.items = q.items[1:]
	}
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *chatQueue) take() []chatItem {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

// catchUp queues the resend of own messages after seq to peer.
func (q *chatQueue) catchUp(peer mesh.PeerID, seq uint64) {
	q.push(chatItem{peer: peer, after: seq, catchUp: true})
}

// askHave queues a CHAT_HAVE to a newly connected peer.
func (q *chatQueue) askHave(peer mesh.PeerID) { q.push(chatItem{peer: peer, ask: true}) }

// broadcastLoop sends own messages and catch-ups in order, one goroutine,
// so a peer never sees our lines out of order.
func (e *Engine) broadcastLoop() {
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.broadcast.signal:
		}
		for _, it := range e.broadcast.take() {
			if e.ctx.Err() != nil {
				return
			}
			e.broadcastOne(it)
		}
	}
}

func (e *Engine) broadcastOne(it chatItem) {
	t := e.transport()
	switch {
	case it.all:
		if err := t.BroadcastChat(e.ctx, it.chat); err != nil {
			e.log.Warn("chat not broadcast", "seq", it.chat.Seq, "err", err)
		}
	case it.ask:
		have := e.chat.haveFrom(it.peer)
		if err := t.SendBytes(e.ctx, it.peer, (&chatHaveMsg{Seq: have}).encode()); err != nil {
			e.log.Debug("chat have not sent", "peer", it.peer, "err", err)
		}
	case it.catchUp:
		for _, m := range e.chat.ownAfter(it.after) {
			if err := t.SendChat(e.ctx, it.peer, m); err != nil {
				e.log.Debug("chat catch-up stopped", "peer", it.peer, "err", err)
				return
			}
		}
	}
}
