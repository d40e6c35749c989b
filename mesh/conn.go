package mesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// Registration refusals.
var (
	errDuplicate    = errors.New("duplicate connection")
	errTooManyPeers = errors.New("too many peers")
	errReplaced     = errors.New("replaced by a newer connection")
)

// acceptLoop accepts connections until Close, backing off on errors, and
// hands each to its own goroutine after the pre-auth limits. A connection
// over the handshake caps waits for a slot (waitThenServe) rather than
// being reset: many members behind one NAT, starting at once, look like
// one address opening many connections, and each must get in. The
// waiting room is bounded as well, so a flood is still held off.
func (n *Node) acceptLoop() {
	defer n.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		raw, err := n.ln.Accept()
		if err != nil {
			if n.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			n.log.Warn("incoming connection not accepted", "err", err, "backoff", backoff,
				"fix", "nothing: retried shortly; if it repeats, raise the open-file limit (ulimit -n)")
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		w, ok := n.admitInbound(raw)
		if !ok {
			n.log.Debug("connection over pre-auth limit", "addr", raw.RemoteAddr().String())
			raw.Close()
			continue
		}
		n.wg.Add(1)
		if w == nil {
			go n.serveInbound(raw)
		} else {
			go n.waitThenServe(w)
		}
	}
}

// admitOutbound registers a dialled connection in the handshake; only
// the node closing refuses it. release undoes it.
func (n *Node) admitOutbound(raw net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.admitLocked(raw, "")
	return true
}

// canAdmitLocked reports whether an inbound connection from ip fits
// MaxPending and MaxPendingPerIP.
func (n *Node) canAdmitLocked(ip string) bool {
	return len(n.pending) < n.cfg.MaxPending && n.perIP[ip] < n.cfg.MaxPendingPerIP
}

// admitLocked registers raw, from ip ("" for a dialled one), in the
// handshake.
func (n *Node) admitLocked(raw net.Conn, ip string) {
	n.pending[raw] = ip
	if ip != "" {
		n.perIP[ip]++
	}
}

func (n *Node) release(raw net.Conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ip, ok := n.pending[raw]
	if !ok {
		return
	}
	delete(n.pending, raw)
	if ip != "" {
		if n.perIP[ip]--; n.perIP[ip] <= 0 {
			delete(n.perIP, ip)
		}
	}
	n.grantLocked()
}

// waiter is an accepted connection waiting for a handshake slot.
type waiter struct {
	raw   net.Conn
	ip    string
	ready chan struct{} // closed once grantLocked admitted it
}

// admitInbound admits an accepted connection to the handshake, or queues
// it behind those from its address already waiting (first come, first
// served), or refuses it when the waiting room is full (MaxWaiting,
// MaxWaitingPerIP). A nil waiter with ok means admitted.
func (n *Node) admitInbound(raw net.Conn) (w *waiter, ok bool) {
	ip, _, _ := net.SplitHostPort(raw.RemoteAddr().String())
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return nil, false
	case n.waiting[ip] == 0 && n.canAdmitLocked(ip):
		n.admitLocked(raw, ip)
		return nil, true
	case len(n.queue) >= n.cfg.MaxWaiting || n.waiting[ip] >= n.cfg.MaxWaitingPerIP:
		return nil, false
	}
	w = &waiter{raw: raw, ip: ip, ready: make(chan struct{})}
	n.queue = append(n.queue, w)
	n.waiting[ip]++
	return w, true
}

// grantLocked admits waiting connections, oldest first, while slots are
// free. The first of an address that cannot go in stops the others of
// that address too, so each address is served in order.
func (n *Node) grantLocked() {
	kept := n.queue[:0]
	for _, w := range n.queue {
		if !n.canAdmitLocked(w.ip) {
			kept = append(kept, w)
			continue
		}
		n.admitLocked(w.raw, w.ip)
		n.leaveLocked(w)
		close(w.ready)
	}
	clear(n.queue[len(kept):])
	n.queue = kept
}

// leaveLocked uncounts w from the waiting room.
func (n *Node) leaveLocked(w *waiter) {
	if n.waiting[w.ip]--; n.waiting[w.ip] <= 0 {
		delete(n.waiting, w.ip)
	}
}

// waitThenServe waits up to HandshakeTimeout for w's handshake slot, then
// serves it as any accepted connection; without a slot, or once the node
// closes, it closes the connection. The peer's own handshake deadline
// covers the wait, so a peer that gave up meanwhile fails at once.
func (n *Node) waitThenServe(w *waiter) {
	if !n.awaitSlot(w) {
		n.log.Debug("connection waited too long for a handshake slot", "addr", w.raw.RemoteAddr().String())
		w.raw.Close()
		n.wg.Done()
		return
	}
	n.serveInbound(w.raw)
}

// awaitSlot reports whether w was admitted within HandshakeTimeout and
// before the node closed; if not, w leaves the queue.
func (n *Node) awaitSlot(w *waiter) bool {
	timer := time.NewTimer(n.cfg.HandshakeTimeout)
	defer timer.Stop()
	select {
	case <-w.ready:
		return true
	case <-timer.C:
	case <-n.ctx.Done():
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-w.ready: // admitted just now: release undoes it if it fails
		return true
	default:
	}
	n.queue = slices.DeleteFunc(n.queue, func(x *waiter) bool { return x == w })
	n.leaveLocked(w)
	return false
}

// serveInbound runs one accepted connection: handshake, then either the
// JOIN of a joiner or the life of a member connection.
func (n *Node) serveInbound(raw net.Conn) {
	defer n.wg.Done()
	tuneConn(raw)
	hs, err := n.handshake(n.ctx, raw, false, PeerID{})
	if err != nil {
		n.release(raw)
		raw.Close()
		n.log.Log(n.ctx, logLevelFor(err), "incoming connection failed", "addr", raw.RemoteAddr().String(), "err", err,
			"fix", fixFor(err, "the other side"))
		return
	}
	if hs.role == roleJoiner {
		n.serveJoin(hs)
		n.release(raw)
		raw.Close()
		return
	}
	p, old, err := n.attach(hs, false)
	n.release(raw)
	if err != nil {
		n.log.Debug("inbound connection refused", "peer", hs.id, "err", err)
		return
	}
	n.servePeer(p, old)
}

// Connect dials addr, authenticates it as a member and keeps the connection.
// It returns once the connection is up (or already was).
func (n *Node) Connect(ctx context.Context, addr string) error {
	return n.connect(ctx, addr, PeerID{})
}

// connect dials addr; expect, if set, is the member ID that must answer.
func (n *Node) connect(ctx context.Context, addr string, expect PeerID) error {
	n.mu.Lock()
	ok := n.started && !n.closed
	n.mu.Unlock()
	if !ok {
		return fmt.Errorf("connect %s: %w", addr, ErrClosed)
	}
	raw, err := n.dialConn(ctx, &net.Dialer{Timeout: n.cfg.HandshakeTimeout, Control: reuseAddr}, addr)
	if err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	if !n.admitOutbound(raw) {
		raw.Close()
		return fmt.Errorf("connect %s: %w", addr, ErrClosed)
	}
	tuneConn(raw)
	hs, err := n.handshake(ctx, raw, true, expect)
	if err == nil {
		var p, old *peer
		if p, old, err = n.attach(hs, true); err == nil {
			go func() { // counted in n.wg by register
				defer n.wg.Done()
				n.servePeer(p, old)
			}()
		}
	}
	n.release(raw)
	if err != nil {
		raw.Close()
		if errors.Is(err, errDuplicate) {
			return nil // already connected: the other connection won
		}
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	return nil
}

// attach registers a handshaken member connection and starts its writer.
// old is a connection it replaced. A refused connection is told why.
// ownGoroutine says the caller will start a goroutine for servePeer.
func (n *Node) attach(hs *handshakeResult, ownGoroutine bool) (p, old *peer, err error) {
	p = newPeer(n, hs)
	extra := 0
	if ownGoroutine {
		extra = 1
	}
	old, err = n.register(p, extra)
	if err != nil {
		code := reasonDuplicate
		switch {
		case errors.Is(err, errTooManyPeers):
			code = reasonTooManyPeers
		case errors.Is(err, errRevoked):
			code = reasonRevoked
		case errors.Is(err, ErrClosed):
			code = reasonShutdown
		}
		hs.conn.SetWriteDeadline(time.Now().Add(time.Second))
		writeFlush(hs.bw, frameBye, encodeReason(code))
		hs.conn.Close()
		return nil, nil, err
	}
	go func() { // counted in n.wg by register
		defer n.wg.Done()
		p.writeLoop()
	}()
	return p, old, nil
}

// register puts p in the peer table: one connection per member. When the
// member already has one, a different HELLO session means the remote
// restarted (p replaces it); otherwise replaces decides. On success it
// adds 1+extra goroutines to n.wg under the same lock that checks closed,
// so Close never waits on a count that can still grow.
func (n *Node) register(p *peer, extra int) (old *peer, err error) {
	var evicted *peer
	defer func() {
		if evicted != nil {
			evicted.log.Debug("connection closed to make room for a member in the partial mesh", "for", p.name)
			evicted.bye(reasonTooManyPeers, nil)
		}
	}()
	n.mu.Lock()
	defer n.mu.Unlock()
	cur := n.peers[p.id]
	full := cur == nil && len(n.livePeersLocked()) >= n.maxConnsLocked()
	var room *peer // the connection closed to let p in, when full
	if full {
		room = n.evictForLocked(p)
	}
	switch {
	case n.closed:
		return nil, ErrClosed
	case n.revs.has(p.id):
		return nil, errRevoked
	case full && room == nil:
		return nil, errTooManyPeers
	case cur != nil && cur.session == p.session && !n.replaces(cur, p):
		return nil, errDuplicate
	}
	evicted = room
	n.peers[p.id] = p
	n.noteConnected(p)
	n.wg.Add(1 + extra)
	return cur, nil
}

// replaces decides whether p, a new connection from the session cur
// also came from, takes cur's place. A member dials only while it holds
// no connection to us, so a new connection next to one older than
// replaceAfter means the member lost that one (its address changed, a
// NAT forgot it) while it still looks alive here: refusing p would cut
// the member off until cur times out, tens of seconds. Only when both are
// young can they be crossing dials at setup (both ends dialed at once),
// where each end sees the same pair and must keep the same one without
// talking: newWins.
func (n *Node) replaces(cur, p *peer) bool {
	return p.since.Sub(cur.since) >= n.replaceAfter || n.newWins(cur, p)
}

// newWins decides between two live connections to the same member.
func (n *Node) newWins(cur, p *peer) bool {
	ci, pi := n.initiator(cur), n.initiator(p)
	if c := bytes.Compare(pi[:], ci[:]); c != 0 {
		return c < 0
	}
	return p.tiebreak < cur.tiebreak // same initiator: both ends see the same values
}

func (n *Node) initiator(p *peer) PeerID {
	if p.outbound {
		return n.self
	}
	return p.id
}

// servePeer runs a registered connection until it ends: events, the read
// loop, then cleanup. Cleanup only removes the table entry it owns.
func (n *Node) servePeer(p, old *peer) {
	if old != nil {
		old.bye(reasonReplaced, nil)
		n.emit(PeerDisconnected{Peer: old.info(), Err: errReplaced})
	}
	p.log.Info("peer connected", "outbound", p.outbound)
	p.trySend(encodeFrame(framePeersReq, nil))
	p.trySend(p.pingFrame())
	n.refreshRecord() // p's HELLO may have told us an address we did not know
	n.pushPeers(p)
	n.learnUDP(p)
	n.rosterChanged()
	n.emit(PeerConnected{Peer: p.info()})
	err := p.readLoop()
	if errors.Is(err, ErrProtocol) {
		p.log.Warn("member broke the protocol; connection closed", "reason", err,
			"fix", "nothing: it reconnects; if it repeats, run the same meshfs version on both")
		p.bye(reasonProtocol, err) // tell the peer why, then close
	} else {
		p.close(err)
	}
	<-p.writerDone
	if k := p.dropped(); k > 0 {
		p.log.Debug("queued frames dropped", "frames", k)
	}
	if !n.unregister(p) {
		return
	}
	p.log.Info("peer disconnected", "err", p.err)
	n.rosterChanged()
	n.refreshRecord() // an address only p saw us at is gone
	n.pushPeers(nil)  // the others learn they no longer reach it through us
	n.emit(PeerDisconnected{Peer: p.info(), Err: p.err})
	n.wake()
}

// unregister removes p from the table if the entry is still p.
func (n *Node) unregister(p *peer) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.peers[p.id] != p {
		return false
	}
	delete(n.peers, p.id)
	n.holdRedial(p)
	if m := n.roster[p.id]; m != nil {
		m.LastSeen = time.Unix(0, p.lastSeen.Load())
		m.sent += p.sent.Load()
		m.recv += p.recv.Load()
	}
	return true
}

// holdRedial makes the redial of a connection that ended younger than
// RedialMin wait RedialMin (mu held). Such a connection was most likely
// refused by the other end, which still holds one from our session (see
// replaces): redialed at once, it would be refused again hundreds of
// times a second, each time a connect and a disconnect for the Handler.
// A dial already scheduled or under way is left alone.
func (n *Node) holdRedial(p *peer) {
	key := idKey(p.id)
	if time.Since(p.since) < n.cfg.RedialMin && n.dials[key] == nil {
		n.dials[key] = &dialState{next: time.Now().Add(n.cfg.RedialMin)}
	}
}

// handleFrame dispatches one frame of a ready connection (reader goroutine).
func (n *Node) handleFrame(p *peer, f frame) error {
	switch f.Type {
	case framePing:
		return p.handlePing(f.Payload)
	case framePong:
		return p.handlePong(f.Payload)
	case framePeersReq:
		if allow(&p.lastPeers, time.Second) {
			p.trySend(encodeFrame(framePeers, n.peersReply(p)))
		}
	case framePeers:
		return n.handlePeers(p, f.Payload)
	case frameChat:
		c, err := decodeChat(f.Payload)
		if err != nil {
			return err
		}
		if !p.chatRate.wait(p.closed) {
			return ErrClosed
		}
		n.emit(ChatReceived{From: p.info(), Chat: c})
	case frameBytes:
		n.emit(BytesReceived{From: p.id, Data: f.Payload})
	case frameRevocations:
		_, err := n.applyRevocations(f.Payload)
		return err
	case frameBye:
		code, _ := decodeReason(f.Payload)
		return &ByeError{Reason: code.String(), code: code}
	case framePunchReq:
		if allow(&p.lastPunchReq, punchReqEvery) {
			return n.handlePunchReq(p, f.Payload)
		}
	case framePunch:
		if allow(&p.lastPunch, punchReqEvery) {
			return n.handlePunch(p, f.Payload)
		}
	case frameCandidates:
		if allow(&p.lastCandidates, punchReqEvery) {
			return n.handleCandidates(p, f.Payload)
		}
	case frameJoinRelay:
		return n.handleJoinRelay(p, f.Payload)
	case frameJoinRelayResult:
		return n.handleRelayResult(p, f.Payload)
	default:
		return protocolError("%v frame on a ready connection", f.Type)
	}
	return nil
}
