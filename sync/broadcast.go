package sync

import (
	"sync"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

// catchUpWait is how long a newly connected peer's live chat waits for its
// CHAT_HAVE before we fall back to resending what it missed while we knew
// it was connected.
const catchUpWait = 10 * time.Second

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

// pendingPeer is a newly connected peer whose catch-up has not run yet: live
// messages to it are held back so that it sees our lines in order.
type pendingPeer struct {
	since   time.Time
	fromSeq uint64 // our last seq when it connected
}

// broadcastLoop sends own messages and catch-ups in order, one goroutine,
// so a peer never sees our lines out of order.
func (e *Engine) broadcastLoop() {
	pending := map[mesh.PeerID]pendingPeer{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-tick.C:
			e.expireCatchUps(pending)
		case <-e.broadcast.signal:
		}
		for _, it := range e.broadcast.take() {
			if e.ctx.Err() != nil {
				return
			}
			e.broadcastOne(it, pending)
		}
	}
}

func (e *Engine) broadcastOne(it chatItem, pending map[mesh.PeerID]pendingPeer) {
	t := e.transport()
	switch {
	case it.all:
		e.sendLive(t, it.chat, pending)
	case it.ask:
		pending[it.peer] = pendingPeer{since: time.Now(), fromSeq: e.chat.lastOwnSeq()}
		have := e.chat.haveFrom(it.peer)
		if err := t.SendBytes(e.ctx, it.peer, (&chatHaveMsg{Seq: have}).encode()); err != nil {
			e.log.Debug("chat have not sent", "peer", it.peer, "err", err)
		}
	case it.catchUp:
		delete(pending, it.peer)
		e.resendOwn(t, it.peer, it.after)
	}
}

// sendLive sends one own message to every connected peer not waiting for
// its catch-up (that catch-up will include it).
func (e *Engine) sendLive(t Transport, m mesh.Chat, pending map[mesh.PeerID]pendingPeer) {
	if len(pending) == 0 {
		if err := t.BroadcastChat(e.ctx, m); err != nil {
			e.log.Warn("chat not broadcast", "seq", m.Seq, "err", err)
		}
		return
	}
	for _, id := range e.connectedPeers() {
		if _, wait := pending[id]; wait {
			continue
		}
		if err := t.SendChat(e.ctx, id, m); err != nil {
			e.log.Debug("chat not sent", "peer", id, "seq", m.Seq, "err", err)
		}
	}
}

// resendOwn sends own messages after seq to one peer, in order.
func (e *Engine) resendOwn(t Transport, peer mesh.PeerID, after uint64) {
	for _, m := range e.chat.ownAfter(after) {
		if err := t.SendChat(e.ctx, peer, m); err != nil {
			e.log.Debug("chat catch-up stopped", "peer", peer, "err", err)
			return
		}
	}
}

// expireCatchUps stops waiting for CHAT_HAVE from peers that never sent
// one: they get what we said since they connected.
func (e *Engine) expireCatchUps(pending map[mesh.PeerID]pendingPeer) {
	t := e.transport()
	for id, p := range pending {
		if time.Since(p.since) > catchUpWait {
			delete(pending, id)
			if e.peer(id) != nil {
				e.resendOwn(t, id, p.fromSeq)
			}
		}
	}
}

// connectedPeers lists the peers with live workers.
func (e *Engine) connectedPeers() []mesh.PeerID {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]mesh.PeerID, 0, len(e.peers))
	for id := range e.peers {
		ids = append(ids, id)
	}
	return ids
}
