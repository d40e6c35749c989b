package mesh

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// Punched QUIC connections. The lower ID dials, the higher accepts, as
// the lower is the TLS client on a punched TCP connection. TLS is the
// same as on TCP: member certificates, TLS 1.3, the same ALPN, the
// remote pinned to the member the PUNCH named; the listener also refuses
// anyone no PUNCH told it to expect now, and joiners. The connection
// carries one bidirectional stream, opened by the accepting side (it
// sends HELLO first), on which the mesh runs as on a TCP connection.
const (
	// quicPunchTimeout bounds the QUIC attempt of a punch: checks, the
	// QUIC handshake and the stream. Then both sides try TCP.
	quicPunchTimeout = 4 * time.Second
	// checkEvery is the gap between two rounds of connectivity checks.
	checkEvery = 150 * time.Millisecond
	// quicIdle is QUIC's own idle timeout, past the mesh's read deadline
	// (DeadAfter): the mesh's PING keeps a connection busy, and decides
	// when it is dead. quicKeepAlive keeps the NATs' UDP mappings when
	// PINGs are rarer than that (many connections, pingBudget).
	quicIdle      = 2 * time.Minute
	quicKeepAlive = 20 * time.Second
)

// QUIC application error codes sent when a connection is closed.
const (
	quicClosed  quic.ApplicationErrorCode = 0
	quicRefused quic.ApplicationErrorCode = 1
)

var errUnexpected = errors.New("quic connection from a member no punch expects")

// quicConfig is the transport's settings for every punched connection:
// windows large enough for bulk transfers on a fast path, one stream.
func quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           quicPunchTimeout,
		MaxIdleTimeout:                 quicIdle,
		KeepAlivePeriod:                quicKeepAlive,
		InitialStreamReceiveWindow:     1 << 20,
		MaxStreamReceiveWindow:         24 << 20,
		InitialConnectionReceiveWindow: 2 << 20,
		MaxConnectionReceiveWindow:     32 << 20,
		MaxIncomingStreams:             1,
		MaxIncomingUniStreams:          -1,
	}
}

// quicServerTLS builds the listener's TLS per connection: our current
// certificate, and only members a punch on u expects now (no joiners).
func (n *Node) quicServerTLS(u *udpPath) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := baseTLS(n.tlsCert())
			c.ClientAuth = tls.RequireAnyClientCert
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				if _, err := n.checkPeer(cs, PeerID{}, false); err != nil {
					return err
				}
				if !u.isExpected(peerIDOf(cs.PeerCertificates[0])) {
					return errUnexpected
				}
				return nil
			}
			return c, nil
		},
	}
}

// quicConn is a QUIC connection's one stream as a net.Conn. Close closes
// the whole connection.
type quicConn struct {
	*quic.Stream
	qc   *quic.Conn
	once sync.Once
}

// quicLinger is how long a closed connection has to deliver what was
// written before it (a BYE and its reason) before it is torn down.
const quicLinger = time.Second

func (c *quicConn) LocalAddr() net.Addr  { return c.qc.LocalAddr() }
func (c *quicConn) RemoteAddr() net.Addr { return c.qc.RemoteAddr() }

// Close ends the stream after what was written, and the connection once
// the other side has closed too or quicLinger passed: CloseWithError at
// once would drop a BYE still queued, and the other side would not learn
// why the connection ended (shutting down, or only trimming a partial
// mesh). A read waiting meanwhile ends at once, as on a closed TCP
// connection.
func (c *quicConn) Close() error {
	c.once.Do(func() {
		c.Stream.Close()
		c.Stream.CancelRead(quic.StreamErrorCode(quicClosed))
		time.AfterFunc(quicLinger, func() { c.qc.CloseWithError(quicClosed, "") })
	})
	return nil
}

// ConnectionState is the TLS state of the QUIC handshake.
func (c *quicConn) ConnectionState() tls.ConnectionState { return c.qc.ConnectionState().TLS }

// quicAcceptLoop hands each accepted QUIC connection to the punch that
// expects it; the TLS check already refused the others, and one that
// comes when its punch gave up is closed.
func (n *Node) quicAcceptLoop() {
	defer n.wg.Done()
	for {
		qc, err := n.udp.ln.Accept(n.ctx)
		if err != nil {
			return // closed
		}
		certs := qc.ConnectionState().TLS.PeerCertificates
		if len(certs) == 0 || !n.udp.hand(peerIDOf(certs[0]), qc) {
			qc.CloseWithError(quicRefused, "not expected")
		}
	}
}

// expect registers a punch waiting for member id's QUIC connection.
func (u *udpPath) expect(id PeerID) chan *quic.Conn {
	ch := make(chan *quic.Conn, 1)
	u.mu.Lock()
	u.expected[id] = ch
	u.mu.Unlock()
	return ch
}

// unexpect ends the wait expect started; a connection handed to it
// meanwhile is closed.
func (u *udpPath) unexpect(id PeerID, ch chan *quic.Conn) {
	u.mu.Lock()
	if u.expected[id] == ch {
		delete(u.expected, id)
	}
	u.mu.Unlock()
	select {
	case qc := <-ch:
		qc.CloseWithError(quicRefused, "not expected")
	default:
	}
}

func (u *udpPath) isExpected(id PeerID) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.expected[id] != nil
}

// hand gives qc to the punch waiting for member id.
func (u *udpPath) hand(id PeerID, qc *quic.Conn) bool {
	u.mu.Lock()
	ch := u.expected[id]
	delete(u.expected, id)
	u.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case ch <- qc:
		return true
	default:
		return false
	}
}

// punchQUIC opens a QUIC connection to member pu.Peer at one of its UDP
// candidates. Both sides send connectivity checks (STUN Binding requests)
// to every candidate each checkEvery; the lower ID dials the first
// candidate that answers, the higher waits for its connection.
func (n *Node) punchQUIC(ctx context.Context, pu punch) (*quicConn, error) {
	u := n.udp
	cands := parseCandidates(pu.UDP)
	if len(cands) == 0 {
		return nil, errors.New("no usable udp candidate")
	}
	client := bytes.Compare(n.self[:], pu.Peer[:]) < 0
	var incoming chan *quic.Conn
	if !client {
		incoming = u.expect(pu.Peer)
		defer u.unexpect(pu.Peer, incoming)
	}
	answers := make(chan stunResult, 2*len(cands))
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	check := func() {
		for _, c := range cands {
			u.sendBinding(c, answers)
		}
	}
	check()
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			return nil, cmp.Or(lastErr, ctx.Err())
		case <-tick.C:
			check()
		case r := <-answers:
			if !client {
				continue
			}
			conn, err := n.dialQUIC(ctx, r.from, pu.Peer)
			if err == nil {
				return conn, nil
			}
			lastErr = err // refused: the other side may not expect us yet
		case qc := <-incoming:
			s, err := qc.OpenStreamSync(ctx)
			if err != nil {
				qc.CloseWithError(quicClosed, "")
				return nil, fmt.Errorf("open quic stream: %w", err)
			}
			return &quicConn{Stream: s, qc: qc}, nil
		}
	}
}

// dialQUIC dials member id at to and accepts the stream it opens.
func (n *Node) dialQUIC(ctx context.Context, to netip.AddrPort, id PeerID) (*quicConn, error) {
	tc := n.clientTLS(id)
	qc, err := n.udp.tr.Dial(ctx, net.UDPAddrFromAddrPort(to), tc, quicConfig())
	if err != nil {
		return nil, fmt.Errorf("quic dial %s: %w", to, err)
	}
	s, err := qc.AcceptStream(ctx)
	if err != nil {
		qc.CloseWithError(quicClosed, "")
		return nil, fmt.Errorf("accept quic stream: %w", err)
	}
	return &quicConn{Stream: s, qc: qc}, nil
}

// punchedQUIC runs HELLO on a punched QUIC connection and keeps it. TLS
// is done; the remote is checked again as on TCP, pinned to id.
func (n *Node) punchedQUIC(conn *quicConn, id PeerID) error {
	if !n.admitOutbound(conn) {
		conn.Close()
		return ErrClosed
	}
	defer n.release(conn)
	client := bytes.Compare(n.self[:], id[:]) < 0
	cs := conn.ConnectionState()
	role, err := n.checkPeer(cs, id, false)
	if err == nil {
		conn.SetDeadline(time.Now().Add(n.cfg.HandshakeTimeout))
		hs := newHandshakeResult(conn, cs, role, client)
		hs.punched, hs.quic = true, true
		if err = n.exchangeHello(hs); err == nil {
			conn.SetDeadline(time.Time{})
			err = n.keepPunched(hs)
		}
	}
	if err != nil {
		conn.Close()
	}
	if errors.Is(err, errDuplicate) {
		return nil
	}
	return err
}

// parseCandidates keeps the valid UDP candidates of a PUNCH.
func parseCandidates(addrs []string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err == nil && ap.Port() != 0 && !ap.Addr().IsUnspecified() && !ap.Addr().IsMulticast() {
			out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	return out
}
