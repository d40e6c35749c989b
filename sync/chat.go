package sync

import (
	"fmt"
	"sync"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

// This file is the room's delivery: the chat loop stores what peers said
// (chat.Store) and the broadcaster sends our own lines, live and as
// catch-up to a peer that was away, always in order.

// chatJob is work for the chat loop: a received message, or an event line.
type chatJob struct {
	from  mesh.PeerID
	name  string
	chat  mesh.Chat
	event string
}

// ChatLogPath returns the rendered chat log (StateDir/chat.log). It exists
// from New on and only ever grows.
func (e *Engine) ChatLogPath() string { return e.chat.LogPath() }

// Say appends one line from the local user to the log, queues its broadcast
// and returns once the line is on disk: one fdatasync of the chat wal,
// shared with every line written meanwhile (chat.Store.Stage). The line is
// on its way to the members while this disk syncs; its sequence number was
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
	e.broadcast.push(chatItem{chat: m, all: true}) // on its way while this disk syncs
	if err := durable(); err != nil {
		return fmt.Errorf("say: %w", err)
	}
	return nil
}

// chatSyncDelay is how long the chat loop lets received lines and events
// sit unsynced: their durability is lazy (a lost received line comes back
// by catch-up), and an fsync per line would compete for the disk with the
// fsyncs that own lines wait on.
const chatSyncDelay = time.Second

// chatLoop stores received messages and event lines. It never waits on an
// fsync: a goroutine of its own syncs the store lazily, so a line arriving
// is in the log (and the chat file) as soon as it is written.
func (e *Engine) chatLoop() {
	dirty := make(chan struct{}, 1)
	synced := make(chan struct{})
	go func() {
		defer close(synced)
		e.chatSyncLoop(dirty)
	}()
	defer func() { <-synced }()
	for {
		select {
		case <-e.ctx.Done():
			return
		case j := <-e.chatIn:
			e.chatDo(j)
			select {
			case dirty <- struct{}{}:
			default:
			}
		}
	}
}

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

func (e *Engine) chatDo(j chatJob) {
	var err error
	if j.event != "" {
		err = e.chat.Event(j.event)
	} else {
		err = e.chat.Receive(j.from, j.name, j.chat)
	}
	if err != nil {
		e.log.Warn("chat message not stored", "peer", j.from, "member", j.name, "err", err, "fix", fixState)
	}
}

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

// catchUps are the connected peers whose catch-up has not run yet.
type catchUps struct {
	mu sync.Mutex
	m  map[mesh.PeerID]pendingPeer
}

// add holds live lines back from a newly connected peer, whose last seen
// own seq was fromSeq when it connected.
func (c *catchUps) add(id mesh.PeerID, fromSeq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[id] = pendingPeer{since: time.Now(), fromSeq: fromSeq}
}

// done ends the wait for id.
func (c *catchUps) done(id mesh.PeerID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

// pending reports whether any catch-up is awaited.
func (c *catchUps) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m) > 0
}

// waiting reports whether live lines to id are held back.
func (c *catchUps) waiting(id mesh.PeerID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[id]
	return ok
}

// expired ends the waits older than catchUpWait and returns, for each, the
// seq to resend after.
func (c *catchUps) expired() map[mesh.PeerID]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	due := map[mesh.PeerID]uint64{}
	for id, p := range c.m {
		if time.Since(p.since) > catchUpWait {
			delete(c.m, id)
			due[id] = p.fromSeq
		}
	}
	return due
}

// broadcastLoop sends own messages and catch-ups in order, one goroutine,
// so a peer never sees our lines out of order.
func (e *Engine) broadcastLoop() {
	tick := time.NewTimer(time.Second)
	defer tick.Stop()
	for {
		tick.Reset(time.Second)
		if !e.catchUps.pending() {
			tick.Stop() // idle: a catch-up to wait for comes with an askHave, which signals
		}
		select {
		case <-e.ctx.Done():
			return
		case <-tick.C:
			e.expireCatchUps()
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
		e.sendLive(t, it.chat)
	case it.ask:
		have := e.chat.HaveFrom(it.peer)
		if err := t.SendBytes(e.ctx, it.peer, (&chatHaveMsg{Seq: have}).encode()); err != nil {
			e.log.Debug("chat have not sent", "peer", it.peer, "err", err)
		}
	case it.catchUp:
		e.catchUps.done(it.peer)
		e.resendOwn(t, it.peer, it.after)
	}
}

// sendLive sends one own message to every peer the engine knows as
// connected and not waiting for its catch-up (that catch-up will include
// it). Sending per peer rather than with BroadcastChat matters: a peer the
// transport already has but the engine has not yet seen connect would get
// this line before the older ones of its catch-up.
func (e *Engine) sendLive(t Transport, m mesh.Chat) {
	for _, id := range e.peers.connected() {
		if e.catchUps.waiting(id) {
			continue
		}
		if err := t.SendChat(e.ctx, id, m); err != nil {
			e.log.Debug("chat not sent", "peer", id, "seq", m.Seq, "err", err)
		}
	}
}

// resendOwn sends own messages after seq to one peer, in order.
func (e *Engine) resendOwn(t Transport, peer mesh.PeerID, after uint64) {
	for _, m := range e.chat.OwnAfter(after) {
		if err := t.SendChat(e.ctx, peer, m); err != nil {
			e.log.Debug("chat catch-up stopped", "peer", peer, "err", err)
			return
		}
	}
}

// expireCatchUps stops waiting for CHAT_HAVE from peers that never sent
// one: they get what we said since they connected.
func (e *Engine) expireCatchUps() {
	t := e.transport()
	for id, seq := range e.catchUps.expired() {
		if e.peers.get(id) != nil {
			e.resendOwn(t, id, seq)
		}
	}
}

// chatEvent appends an event line ("* text") to the rendered chat log.
func (e *Engine) chatEvent(text string) {
	e.sendChatJob(chatJob{event: text})
}

// sendChatJob hands work to the chat loop, blocking while it is busy.
func (e *Engine) sendChatJob(j chatJob) {
	select {
	case e.chatIn <- j:
	case <-e.ctx.Done():
	}
}
