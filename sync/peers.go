package sync

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/meshfs/meshfs/mesh"
)

// peerConn holds the two goroutines that serve one connected peer: its
// sender and its receiver. A new connection gets a new peerConn; objects
// tagged with an old one are left alone by the new one.
type peerConn struct {
	id        mesh.PeerID
	ctx       context.Context
	cancel    context.CancelFunc
	toReceive chan inMsg    // OFFER, CHUNK, DONE for the receiver (bounded)
	bufs      blockBufs     // the receiver's block buffers (blockbuf.go)
	replies   mailbox       // ACCEPT, REJECT, ACK for the sender
	newWork   chan struct{} // new deliveries for the sender (capacity 1)
	hello     chan struct{} // closed when the peer's HELLO says it speaks Version
	helloOnce sync.Once
	mismatch  atomic.Pointer[string] // why nothing is offered to it, if its HELLO differs

	// Closed when the goroutines exit; the next connection's goroutines
	// wait for them, so the handover of flights and open partials is clean.
	sendDone, recvDone chan struct{}
}

// greeted records the peer's HELLO: the same version opens the sender; any
// other keeps it shut and says why in the peer's status.
func (p *peerConn) greeted(version uint16) (ok bool) {
	if version != Version {
		why := fmt.Sprintf("speaks sync protocol %d, this node %d: run the same meshfs version", version, Version)
		p.mismatch.Store(&why)
		return false
	}
	p.helloOnce.Do(func() { close(p.hello) })
	return true
}

// problem is why nothing is offered to the peer, or "".
func (p *peerConn) problem() string {
	if why := p.mismatch.Load(); why != nil {
		return *why
	}
	return ""
}

// maxReplies bounds a sender's mailbox. An honest receiver has at most a
// few replies per offer in flight; more is a misbehaving peer and is dropped.
const maxReplies = 1024

// mailbox is a bounded queue that never blocks the caller: the mesh reader
// must not wait on a sender that is itself waiting for the network.
type mailbox struct {
	mu     sync.Mutex
	msgs   []any
	signal chan struct{}
}

// put adds a message and wakes the sender; past maxReplies it drops the
// message and says so.
func (m *mailbox) put(msg any) bool {
	m.mu.Lock()
	ok := len(m.msgs) < maxReplies
	if ok {
		m.msgs = append(m.msgs, msg)
	}
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
	return ok
}

// take returns and clears the queued messages.
func (m *mailbox) take() []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	msgs := m.msgs
	m.msgs = nil
	return msgs
}

// peerSet knows the connected peers' goroutines and every member's
// display name.
type peerSet struct {
	mu    sync.Mutex
	conns map[mesh.PeerID]*peerConn // live connections
	last  map[mesh.PeerID]*peerConn // latest peerConn per peer, even stopped
	names map[mesh.PeerID]string    // sanitised display names
	// away holds the members whose last connection closed without their
	// leaving (mesh.PeerDisconnected.Left): the chat says neither that
	// they left nor, when they connect again, that they joined.
	away map[mesh.PeerID]bool
}

func newPeerSet() *peerSet {
	return &peerSet{conns: map[mesh.PeerID]*peerConn{}, last: map[mesh.PeerID]*peerConn{},
		names: map[mesh.PeerID]string{}, away: map[mesh.PeerID]bool{}}
}

// wentAway notes that id's connection closed, and reports whether the
// member left: if not, its next connection is not news either.
func (s *peerSet) wentAway(id mesh.PeerID, left bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if left {
		delete(s.away, id)
	} else {
		s.away[id] = true
	}
	return left
}

// cameBack notes that id connected, and reports whether that is news: it
// is unless its last connection closed without its leaving.
func (s *peerSet) cameBack(id mesh.PeerID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	news := !s.away[id]
	delete(s.away, id)
	return news
}

// get returns the live peerConn for id, or nil.
func (s *peerSet) get(id mesh.PeerID) *peerConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[id]
}

// add registers a new connection for id unless one is live; it returns the
// live one and the previous (stopped) one, whose goroutines the new ones
// wait for.
func (s *peerSet) add(p *peerConn) (live, prev *peerConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if live := s.conns[p.id]; live != nil {
		return live, nil
	}
	prev = s.last[p.id]
	s.conns[p.id], s.last[p.id] = p, p
	return p, prev
}

// remove forgets id's live connection and stops its goroutines.
func (s *peerSet) remove(id mesh.PeerID) {
	s.mu.Lock()
	p := s.conns[id]
	delete(s.conns, id)
	s.mu.Unlock()
	if p != nil {
		p.cancel()
	}
}

// stopAll stops every connection's goroutines.
func (s *peerSet) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.conns {
		p.cancel()
	}
}

// wakeSenders tells every sender that new deliveries exist.
func (s *peerSet) wakeSenders() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.conns {
		select {
		case p.newWork <- struct{}{}:
		default:
		}
	}
}

// noteName remembers a peer's display name for folders and logs.
func (s *peerSet) noteName(p mesh.PeerInfo) {
	if p.Name == "" {
		return
	}
	s.mu.Lock()
	s.names[p.ID] = safeName(p.Name)
	s.mu.Unlock()
}

// name returns the sanitised display name of a peer, if known.
func (s *peerSet) name(id mesh.PeerID) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.names[id]
	return n, ok
}

// displayName returns the sanitised display name of a peer, or its short ID.
func (s *peerSet) displayName(id mesh.PeerID) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.names[id]; ok {
		return n
	}
	return id.Short()
}

// namesOf lists the display names of ids, sorted: "bob, carol".
func (s *peerSet) namesOf(ids []mesh.PeerID) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = s.displayName(id)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// nameOf is the display name of a peer given as a full ID string, or
// fallback when none is known.
func (s *peerSet) nameOf(key, fallback string) string {
	id, err := mesh.ParsePeerID(key)
	if err != nil {
		return fallback
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.names[id]; ok {
		return n
	}
	return fallback
}

// peerOrUp returns the live peerConn for id. A message that overtook its
// PeerConnected starts one, but only if the transport says the peer is
// connected: a straggler from a closed connection is dropped.
func (e *Engine) peerOrUp(id mesh.PeerID) *peerConn {
	if p := e.peers.get(id); p != nil {
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
	e.wg.Add(2) // under e.mu, so Close cannot be waiting already
	e.mu.Unlock()
	ctx, cancel := context.WithCancel(e.ctx)
	p := &peerConn{
		id:        info.ID,
		ctx:       ctx,
		cancel:    cancel,
		toReceive: make(chan inMsg, e.cfg.QueueLen),
		bufs:      newBlockBufs(),
		replies:   mailbox{signal: make(chan struct{}, 1)},
		newWork:   make(chan struct{}, 1),
		hello:     make(chan struct{}),
		sendDone:  make(chan struct{}),
		recvDone:  make(chan struct{}),
	}
	live, prev := e.peers.add(p)
	if live != p {
		cancel()
		e.wg.Add(-2)
		return live
	}
	e.out.requeueRefused(info.ID)
	go func() {
		defer e.wg.Done()
		defer close(p.sendDone)
		if prev == nil || waitOrDone(p.ctx, prev.sendDone) {
			newSender(e.out, p).run()
		}
	}()
	go func() {
		defer e.wg.Done()
		defer close(p.recvDone)
		if prev == nil || waitOrDone(p.ctx, prev.recvDone) {
			newReceiver(e.in, p).run()
		}
	}()
	return p
}

// peerDown stops the goroutines of a peer that disconnected or was removed.
func (e *Engine) peerDown(id mesh.PeerID) {
	e.peers.remove(id)
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
