package mesh

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfs/meshfs/internal/safetext"
	"github.com/meshfs/meshfs/internal/wire"
)

// byeGrace is how long a connection that said BYE waits for its writer to
// flush before it is closed regardless.
const byeGrace = time.Second

// errByeSent ends a connection after we sent BYE.
var errByeSent = errors.New("closed by this node")

// peer is one authenticated member connection. Its reader goroutine (the one
// that ran the handshake, see Node.runConn) reads and dispatches frames; its
// writer goroutine is the only one that writes to conn. Others hand frames
// to the writer through the two bounded queues.
type peer struct {
	// Immutable after the handshake.
	n        *Node
	conn     net.Conn // the TLS connection
	br       *bufio.Reader
	bw       *bufio.Writer // used by the writer goroutine only
	batch    *batchConn    // under conn: flushed after bw
	id       PeerID
	name     string
	outbound bool     // we dialed it
	session  uint64   // the remote process's session from HELLO
	tiebreak uint64   // same on both ends: TLS exporter value
	addrs    []string // the remote's advertised listen addresses (hosts resolved)
	remote   string   // remote address of the connection
	observed string   // our address as the remote sees it (its HELLO), validated
	release  string   // the remote's meshfs release from HELLO, sanitised
	since    time.Time
	log      *slog.Logger

	ctrl       chan []byte // control frames: drained first
	bulk       chan []byte // bulk frames (SendBulk), from and back to Node.frames
	closed     chan struct{}
	writerDone chan struct{}
	closeOnce  sync.Once
	err        error // why it closed; written once before closed is closed
	byeTimer   atomic.Pointer[time.Timer]
	byeCause   atomic.Pointer[error] // the close error once BYE is written

	sent, recv atomic.Uint64
	rtt        atomic.Int64 // nanoseconds
	skew       atomic.Int64 // nanoseconds the remote's wall clock is ahead of ours
	skewKnown  atomic.Bool  // skew has been measured
	lastSeen   atomic.Int64 // unix nanoseconds
	lastPong   atomic.Int64 // rate limits: unix nanos of the last answer
	lastPing   atomic.Int64 // unix nanos the writer last wrote a PING (probe)
	pingEvery  atomic.Int64 // nanoseconds: the writer's current ping interval (armPing)
	lastPeers  atomic.Int64
	// peersNext is the last member the previous answer to this peer's
	// PEERS_REQ listed, at first a random ID (Node.peersReply); the
	// reader's alone.
	peersNext PeerID
	// lastPunchReq and lastPunch rate-limit what a member can make this
	// node do for hole punching: introductions and dials.
	lastPunchReq, lastPunch atomic.Int64
	lastCandidates          atomic.Int64 // rate limit of CANDIDATES
	punched                 bool         // made by hole punching (Node.punch)
	quic                    bool         // a punched QUIC connection (quic.go)
	// udp are the remote's UDP candidates from its last CANDIDATES, passed
	// on in PUNCH; guarded by n.mu.
	udp []string
	// links are the members the remote says it is connected to, from its
	// last PEERS; guarded by n.mu.
	links    map[PeerID]struct{}
	chatRate *rateLimiter // reader goroutine only
	readBuf  []byte       // reader goroutine only: BYTES payloads (readFrameInto)
}

func newPeer(n *Node, hs *handshakeResult) *peer {
	now := time.Now()
	p := &peer{
		n: n, conn: hs.conn, br: hs.br, bw: hs.bw, batch: hs.batch, id: hs.id, name: hs.name,
		outbound: hs.outbound, session: hs.hello.Session, tiebreak: hs.tiebreak,
		addrs: hs.addrs, remote: hs.conn.RemoteAddr().String(), release: safetext.Text(hs.hello.Release), since: now,
		observed: hs.hello.Observed, punched: hs.punched, quic: hs.quic,
		ctrl:       make(chan []byte, n.cfg.ControlQueue),
		bulk:       make(chan []byte, n.cfg.BulkQueue),
		closed:     make(chan struct{}),
		writerDone: make(chan struct{}),
		chatRate:   newRateLimiter(n.cfg.ChatRate, n.cfg.ChatBurst),
		peersNext:  randomPeerID(),
	}
	p.log = n.log.With("peer", p.id, "member", p.name, "addr", p.remote)
	p.lastSeen.Store(now.UnixNano())
	return p
}

// close ends the connection once; later calls do nothing.
func (p *peer) close(err error) {
	p.closeOnce.Do(func() {
		p.err = err
		close(p.closed)
		p.conn.Close()
		if t := p.byeTimer.Load(); t != nil {
			t.Stop()
		}
	})
}

// bye asks the writer to send BYE and close; if the writer does not get to
// it within byeGrace (or the queue is full), the connection closes anyway.
// cause, if not nil, is the error the connection ends with.
func (p *peer) bye(code reasonCode, cause error) {
	switch {
	case cause == nil && code == reasonTooManyPeers:
		cause = fmt.Errorf("%w: %w", errByeSent, errTrimmed)
	case cause == nil:
		cause = fmt.Errorf("%w: %s", errByeSent, code)
	}
	// The first cause wins. Store a copy: a pointer to the parameter would be
	// read by a later caller while this one reassigns it.
	first := cause
	p.byeCause.CompareAndSwap(nil, &first)
	cause = *p.byeCause.Load()
	if !p.trySend(encodeFrame(frameBye, encodeReason(code))) {
		p.close(cause)
		return
	}
	t := time.AfterFunc(byeGrace, func() { p.close(cause) })
	p.byeTimer.Store(t)
	select {
	case <-p.closed: // closed meanwhile: close did not see the timer
		t.Stop()
	default:
	}
}

// readerGrace is how long a failed write waits for the reader to end the
// connection first.
const readerGrace = 500 * time.Millisecond

// writeFailed closes p after a write error. The reader is given
// readerGrace to end it first: a write fails once the other side has
// closed, and what that side said before (BYE and why: shutting down, or
// only trimming a partial mesh) is still in the read buffer and tells
// better why the connection ended.
func (p *peer) writeFailed(err error) {
	t := time.NewTimer(readerGrace)
	defer t.Stop()
	select {
	case <-p.closed:
	case <-t.C:
	}
	p.close(fmt.Errorf("write: %w", err))
}

// isClosed reports whether close has run.
func (p *peer) isClosed() bool {
	select {
	case <-p.closed:
		return true
	default:
		return false
	}
}

// send queues f on q, blocking while q is full (back-pressure) until ctx is
// done or the connection closes.
func (p *peer) send(ctx context.Context, q chan []byte, f []byte) error {
	if p.isClosed() {
		return fmt.Errorf("send to %v: connection closed: %w", p.id.Short(), ErrUnknownPeer)
	}
	select {
	case q <- f:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("send to %v: %w", p.id.Short(), ctx.Err())
	case <-p.closed:
		return fmt.Errorf("send to %v: connection closed: %w", p.id.Short(), ErrUnknownPeer)
	}
}

// trySend queues a control frame without blocking; used by the reader for
// answers (PONG, PEERS), which are safe to coalesce or drop.
func (p *peer) trySend(f []byte) bool {
	select {
	case p.ctrl <- f:
		return true
	default:
		return false
	}
}

// writeLoop is the writer goroutine: control frames (chat among them)
// first, then bulk, a PING every pingEvery; each queue keeps its order.
// It flushes as flushNow says.
func (p *peer) writeLoop() {
	defer close(p.writerDone)
	p.batch.startHolding() // this goroutine is the only writer from now on
	ping := time.NewTimer(p.armPing())
	defer ping.Stop()
	for {
		f, bulk, ok := p.next(ping.C)
		if !ok {
			return
		}
		if frameType(f[0]) == framePing {
			ping.Reset(p.armPing())
			p.lastPing.Store(time.Now().UnixNano())
		}
		err := p.write(f)
		bye := frameType(f[0]) == frameBye
		if bulk { // written, or copied into bw: the pool may hand it out again
			p.n.frames.put(f)
		}
		if err == nil && p.flushNow(bye, bulk) {
			err = p.flush()
		}
		if err != nil {
			p.writeFailed(err)
			return
		}
		if bye {
			cause := fmt.Errorf("%w: %s", errByeSent, decodeReasonText(f[frameHeaderLen:]))
			if c := p.byeCause.Load(); c != nil {
				cause = *c
			}
			p.close(cause)
			return
		}
	}
}

// flushNow says whether to send what the writer gathered: after BYE,
// when both queues are empty, and after the last of a run of control
// frames even though bulk frames wait. A chat line or a PONG must not sit
// in the batch buffer until a 1 MiB chunk fills it.
func (p *peer) flushNow(bye, bulk bool) bool {
	return bye || len(p.ctrl) == 0 && (!bulk || len(p.bulk) == 0)
}

// next returns the next frame to write and whether it came from the bulk
// queue (its buffer then goes back to the node's frame pool once written),
// or false once the connection closed.
func (p *peer) next(tick <-chan time.Time) (f []byte, bulk, ok bool) {
	select {
	case f := <-p.ctrl:
		return f, false, true
	case <-p.closed:
		return nil, false, false
	default:
	}
	select {
	case f := <-p.ctrl:
		return f, false, true
	case f := <-p.bulk:
		return f, true, true
	case <-tick:
		return p.pingFrame(), false, true
	case <-p.closed:
		return nil, false, false
	}
}

// write buffers one frame under the write deadline: a peer that stops
// reading makes this fail after WriteTimeout, and only this peer is dropped.
func (p *peer) write(f []byte) error {
	p.conn.SetWriteDeadline(time.Now().Add(p.n.cfg.WriteTimeout))
	_, err := p.bw.Write(f)
	p.sent.Add(uint64(len(f)))
	return err
}

func (p *peer) flush() error {
	p.conn.SetWriteDeadline(time.Now().Add(p.n.cfg.WriteTimeout))
	if err := p.bw.Flush(); err != nil {
		return err
	}
	return p.batch.flush()
}

// pingFrame carries our monotonic clock, which the PONG echoes back, and
// our wall clock.
func (p *peer) pingFrame() []byte {
	return encodeFrame(framePing, encodeKeepalive(keepalive{Mono: uint64(p.n.mono()), Wall: time.Now().UnixNano()}))
}

// handlePing answers a PING (at most one PONG per PingInterval/10) with
// its monotonic clock and our wall clock, and updates the skew estimate
// once a round trip has been measured.
func (p *peer) handlePing(payload []byte) error {
	k, err := decodeKeepalive(payload)
	if err != nil {
		return err
	}
	now := time.Now()
	if rtt := p.rtt.Load(); rtt > 0 {
		p.noteSkew(estimateSkew(time.Unix(0, k.Wall), now, time.Duration(rtt)))
	}
	if allow(&p.lastPong, p.n.cfg.PingInterval/10) {
		p.trySend(encodeFrame(framePong, encodeKeepalive(keepalive{Mono: k.Mono, Wall: now.UnixNano()})))
	}
	return nil
}

// readLoop reads frames until an error: the idle deadline (deadAfter) while
// waiting for a header, then FrameTimeout to finish the frame.
func (p *peer) readLoop() error {
	cfg := &p.n.cfg
	for {
		p.conn.SetReadDeadline(time.Now().Add(p.deadAfter()))
		f, err := readFrameInto(p.br, cfg.MaxBytes, func() {
			p.conn.SetReadDeadline(time.Now().Add(cfg.FrameTimeout))
		}, &p.readBuf)
		if err != nil {
			return err
		}
		p.recv.Add(uint64(frameHeaderLen + len(f.Payload)))
		p.lastSeen.Store(time.Now().UnixNano())
		if err := p.n.handleFrame(p, f); err != nil {
			return err
		}
	}
}

// pingBudget is how many PINGs a second a node sends over all its
// connections at most, once it has more than pingBudget × PingInterval
// seconds' worth of them (40 with the defaults): an idle member's cost
// must not grow with the mesh.
const pingBudget = 4

// pingEvery is how often each connection sends PING: PingInterval, or
// longer with many connections, so the node sends at most pingBudget
// PINGs a second.
func (n *Node) pingEvery() time.Duration {
	n.mu.Lock()
	conns := len(n.peers)
	n.mu.Unlock()
	return max(n.cfg.PingInterval, time.Duration(conns)*time.Second/pingBudget)
}

// armPing returns the wait until this connection's next PING and keeps it
// for deadAfter.
func (p *peer) armPing() time.Duration {
	every := p.n.pingEvery()
	p.pingEvery.Store(int64(every))
	return every
}

// deadAfter is the read deadline while waiting for a frame: DeadAfter,
// stretched as much as this connection's ping interval is. Each of our
// PINGs is answered by a PONG, so a live peer always sends something
// within our own interval, whatever its own interval is.
func (p *peer) deadAfter() time.Duration {
	cfg := &p.n.cfg
	every := time.Duration(p.pingEvery.Load())
	if every <= cfg.PingInterval {
		return cfg.DeadAfter
	}
	return time.Duration(float64(cfg.DeadAfter) * float64(every) / float64(cfg.PingInterval))
}

// handlePong records the round-trip time measured from our PING, and the
// skew of the remote's clock.
func (p *peer) handlePong(payload []byte) error {
	k, err := decodeKeepalive(payload)
	if err != nil {
		return err
	}
	sent := int64(k.Mono)
	if rtt := p.n.mono() - sent; sent > 0 && rtt >= 0 {
		p.rtt.Store(rtt)
		p.noteSkew(estimateSkew(time.Unix(0, k.Wall), time.Now(), time.Duration(rtt)))
	}
	return nil
}

func (p *peer) noteSkew(d time.Duration) {
	p.skew.Store(int64(d))
	p.skewKnown.Store(true)
}

// allow is a per-peer rate limit: at most one answer per interval, so a
// flood of PING or PEERS_REQ is coalesced instead of answered one by one.
func allow(last *atomic.Int64, interval time.Duration) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	return now-prev >= int64(interval) && last.CompareAndSwap(prev, now)
}

// info is a snapshot of this connection as a PeerInfo.
func (p *peer) info() PeerInfo {
	return PeerInfo{
		ID: p.id, Name: p.name, State: Connected, Addr: p.remote,
		RTT:     time.Duration(p.rtt.Load()),
		Release: p.release,
		Skew:    time.Duration(p.skew.Load()), SkewKnown: p.skewKnown.Load(),
		LastSeen:  time.Unix(0, p.lastSeen.Load()),
		Since:     p.since,
		Outbound:  p.outbound,
		Link:      p.link(),
		Transport: p.transport(),
		Sent:      p.sent.Load(),
		Received:  p.recv.Load(),
	}
}

// dropped counts frames still queued after the writer stopped.
func (p *peer) dropped() int { return len(p.ctrl) + len(p.bulk) }

// encodeReason is the payload of BYE and JOIN_ERR: one reason code.
func encodeReason(c reasonCode) []byte { return []byte{byte(c)} }

// decodeReason parses a reason payload.
func decodeReason(p []byte) (reasonCode, error) {
	d := wire.Decoder{B: p}
	c := reasonCode(d.U8())
	return c, finish(&d)
}

func decodeReasonText(p []byte) string {
	c, _ := decodeReason(p)
	return c.String()
}
