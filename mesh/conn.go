package mesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Registration refusals.
var (
	errDuplicate    = errors.New("duplicate connection")
	errTooManyPeers = errors.New("too many peers")
	errReplaced     = errors.New("replaced by a newer connection")
)

// acceptLoop accepts connections until Close, backing off on errors, and
// hands each to its own goroutine after the pre-auth limits.
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
		if !n.admit(raw, true) {
			n.log.Debug("connection over pre-auth limit", "addr", raw.RemoteAddr().String())
			raw.Close()
			continue
		}
		n.wg.Add(1)
		go n.serveInbound(raw)
	}
}

// admit registers a connection in the handshake, enforcing MaxPending and
// (for inbound ones) MaxPendingPerIP. release undoes it.
func (n *Node) admit(raw net.Conn, inbound bool) bool {
	ip := ""
	if inbound {
		ip, _, _ = net.SplitHostPort(raw.RemoteAddr().String())
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || inbound && (len(n.pending) >= n.cfg.MaxPending || n.perIP[ip] >= n.cfg.MaxPendingPerIP) {
		return false
	}
	n.pending[raw] = ip
	if inbound {
		n.perIP[ip]++
	}
	return true
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
	d := net.Dialer{Timeout: n.cfg.HandshakeTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	if !n.admit(raw, false) {
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
// restarted (p replaces it); otherwise both ends keep the connection that
// the lower node ID initiated, so they agree without talking. On success it
// adds 1+extra goroutines to n.wg under the same lock that checks closed,
// so Close never waits on a count that can still grow.
func (n *Node) register(p *peer, extra int) (old *peer, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch cur := n.peers[p.id]; {
	case n.closed:
		return nil, ErrClosed
	case n.revs.has(p.id):
		return nil, errRevoked
	case cur == nil && len(n.peers) >= n.cfg.MaxPeers:
		return nil, errTooManyPeers
	case cur != nil && cur.session == p.session && !n.newWins(cur, p):
		return nil, errDuplicate
	default:
		n.peers[p.id] = p
		n.noteConnected(p)
		n.wg.Add(1 + extra)
		return cur, nil
	}
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
	n.pushPeers(p)
	n.saveRoster()
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
	n.saveRoster()
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
	if m := n.roster[p.id]; m != nil {
		m.LastSeen = time.Unix(0, p.lastSeen.Load())
		m.sent += p.sent.Load()
		m.recv += p.recv.Load()
	}
	return true
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
			p.trySend(encodeFrame(framePeers, n.peersPayload()))
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
		return &ByeError{Reason: decodeReasonText(f.Payload)}
	default:
		return protocolError("%v frame on a ready connection", f.Type)
	}
	return nil
}
