package sync

import (
	"context"
	"sync"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

// peerConn holds the two goroutines that serve one connected peer: its
// sender and its receiver. A new connection gets a new peerConn; objects
// tagged with an old one are left alone by the new one.
type peerConn struct {
	id      mesh.PeerID
	ctx     context.Context
	cancel  context.CancelFunc
	inbound chan inMsg    // OFFER, CHUNK, DONE for the receiver (bounded)
	bufs    blockBufs     // the receiver's block buffers (blockbuf.go)
	mail    mailbox       // ACCEPT, REJECT, ACK for the sender
	wake    chan struct{} // new work for the sender (capacity 1)

	// Closed when the goroutines exit; the next connection's goroutines
	// wait for them, so the handover of flights and open partials is clean.
	sendDone, recvDone chan struct{}
}

// maxMail bounds a sender's mailbox. An honest receiver has at most a few
// replies per offer in flight; more is a misbehaving peer and is dropped.
const maxMail = 1024

// mailbox is an unbounded-looking, bounded queue that never blocks the
// caller: the mesh reader must not wait on a sender that is itself waiting
// for the network.
type mailbox struct {
	mu     sync.Mutex
	msgs   []any
	signal chan struct{}
}

// put adds a message and wakes the sender; it drops when full.
func (m *mailbox) put(msg any) {
	m.mu.Lock()
	if len(m.msgs) < maxMail {
		m.msgs = append(m.msgs, msg)
	}
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

// take returns and clears the queued messages.
func (m *mailbox) take() []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	msgs := m.msgs
	m.msgs = nil
	return msgs
}

// peer returns the live peerConn for id, or nil.
func (e *Engine) peer(id mesh.PeerID) *peerConn {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.peers[id]
}

// peerOrUp returns the live peerConn for id. A message that overtook its
// PeerConnected starts one, but only if the transport says the peer is
// connected: a straggler from a closed connection is dropped.
func (e *Engine) peerOrUp(id mesh.PeerID) *peerConn {
	if p := e.peer(id); p != nil {
		return p
	}
	for _, info := range e.transport().Peers() {
		if info.ID == id && info.State == mesh.Connected {
			return e.peerUp(info)
		}
	}
	e.log.Debug("message from unconnected peer dropped", "peer", id)
	return nil
}

// peerUp starts the sender and receiver of a newly connected peer, and
// asks it for the chat messages we lack. It is idempotent.
func (e *Engine) peerUp(info mesh.PeerInfo) *peerConn {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	if p, ok := e.peers[info.ID]; ok {
		e.mu.Unlock()
		return p
	}
	ctx, cancel := context.WithCancel(e.ctx)
	p := &peerConn{
		id:       info.ID,
		ctx:      ctx,
		cancel:   cancel,
		inbound:  make(chan inMsg, e.cfg.QueueLen),
		bufs:     newBlockBufs(),
		mail:     mailbox{signal: make(chan struct{}, 1)},
		wake:     make(chan struct{}, 1),
		sendDone: make(chan struct{}),
		recvDone: make(chan struct{}),
	}
	prev := e.lastConn[info.ID]
	e.lastConn[info.ID] = p
	e.chatPending[info.ID] = pendingPeer{since: time.Now(), fromSeq: e.chat.LastOwnSeq()}
	e.peers[info.ID] = p
	e.requeueRefusedLocked(info.ID)
	e.wg.Add(2)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		defer close(p.sendDone)
		if prev == nil || waitOrDone(p.ctx, prev.sendDone) {
			e.runSender(p)
		}
	}()
	go func() {
		defer e.wg.Done()
		defer close(p.recvDone)
		if prev == nil || waitOrDone(p.ctx, prev.recvDone) {
			e.runReceiver(p)
		}
	}()
	e.broadcast.askHave(info.ID)
	return p
}

// peerDown stops the goroutines of a peer that disconnected or was removed.
func (e *Engine) peerDown(id mesh.PeerID) {
	e.mu.Lock()
	p, ok := e.peers[id]
	delete(e.peers, id)
	delete(e.chatPending, id)
	e.mu.Unlock()
	if ok {
		p.cancel()
	}
}

// wakeSenders tells every sender that new deliveries exist.
func (e *Engine) wakeSenders() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.peers {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// waitOrDone waits for ch to close; false if ctx ended first.
func waitOrDone(ctx context.Context, ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}
