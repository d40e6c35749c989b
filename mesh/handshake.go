package mesh

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/meshfs/meshfs/internal/safetext"
	"github.com/meshfs/meshfs/internal/wire"
)

// alpn is the only application protocol spoken; protoVersion goes in HELLO.
const (
	alpn = "meshfs/1"
	// protoVersion is the mesh wire protocol. 2: PEERS entries carry member
	// certificates; 3: (sync payloads changed); 4: the payloads of BYTES
	// frames are versioned by their user (sync sends its own HELLO), so
	// mesh's version changes only with mesh's own frames; 5: HELLO carries
	// the release version and PING and PONG the sender's wall clock, for
	// 'meshfs doctor'; 6: HELLO ends with the address the sender sees the
	// receiver's connection come from, and a member's PEERS lists its own
	// current addresses (a mapped port found after the handshake); 7:
	// PEERS entries say whether the sender is connected to the member and
	// carry the member's signed address record, PUNCH_REQ and PUNCH
	// introduce two members that cannot dial each other, and JOIN_RELAY
	// and JOIN_RELAY_RESULT let an anchor pass a JOIN to the admin; 8:
	// CANDIDATES tells a member the sender's UDP addresses and PUNCH ends
	// with the other side's, for hole punching over QUIC (quic.go).
	protoVersion    = 8
	maxAddrs        = 8
	maxAddrLen      = 300
	maxNameBytes    = safetext.MaxNameRunes * 4
	maxReleaseBytes = 64
	bufSize         = 64 << 10
)

// ProtocolVersion is the wire protocol version this package speaks. It goes
// in HELLO, and a member that speaks another version is refused.
const ProtocolVersion = protoVersion

// Handshake refusals. errRevoked and errSelf are also used by the dialer to
// decide not to retry.
var (
	errRevoked = errors.New("peer is revoked")
	errSelf    = errors.New("connection to self")
	errWrongID = errors.New("peer is not the expected member")
)

// peerRole is what the verified certificate makes of the remote.
type peerRole int

const (
	roleMember peerRole = iota + 1 // chains to the mesh CA, not revoked
	roleJoiner                     // self-signed, accepted only while an invite is open
)

// hello is the first frame each side sends. Identity is never taken from it.
type hello struct {
	Version    uint16
	Name       string
	Addrs      []string
	RevVersion uint64
	Session    uint64 // random per process start: tells a restart from a duplicate
	Release    string // the sender's meshfs release, for display (Config.Release)
	Observed   string // the receiver's address as the sender sees it ("" if unknown)
}

func encodeHello(h hello) []byte {
	var e wire.Encoder
	e.U16(h.Version)
	e.Str(h.Name)
	e.U8(uint8(len(h.Addrs)))
	for _, a := range h.Addrs {
		e.Str(a)
	}
	e.U64(h.RevVersion)
	e.U64(h.Session)
	e.Str(h.Release)
	e.Str(h.Observed)
	return e.B
}

// decodeHello checks the version before anything else: another version's
// HELLO may be laid out differently, and its sender must still learn that
// the versions differ rather than that its HELLO was malformed.
func decodeHello(p []byte) (hello, error) {
	d := wire.Decoder{B: p}
	h := hello{Version: d.U16()}
	if d.Err() == nil && h.Version != protoVersion {
		return hello{}, fmt.Errorf("%w: %w: peer speaks mesh protocol %d, this node %d: both need the same meshfs version",
			ErrProtocol, ErrVersion, h.Version, protoVersion)
	}
	h.Name = d.Str(maxNameBytes)
	h.Addrs = decodeAddrs(&d)
	h.RevVersion = d.U64()
	h.Session = d.U64()
	h.Release = d.Str(maxReleaseBytes)
	if h.Observed = d.Str(maxAddrLen); d.Err() == nil && h.Observed != "" {
		if err := validateAddr(h.Observed); err != nil {
			d.Fail(err)
		}
	}
	if err := finish(&d); err != nil {
		return hello{}, fmt.Errorf("decode hello: %w", err)
	}
	return h, nil
}

// decodeAddrs reads a u8 count (<= 8) of validated host:port strings.
func decodeAddrs(d *wire.Decoder) []string {
	return decodeList(d, maxAddrs, "addresses", validateAddr)
}

// decodeList reads a u8 count (at most limit) of addresses, each of which
// check must accept; what names them in the error.
func decodeList(d *wire.Decoder, limit int, what string, check func(string) error) []string {
	n := int(d.U8())
	if n > limit {
		d.Fail(protocolError("%d %s", n, what))
		return nil
	}
	var out []string
	for range n {
		a := d.Str(maxAddrLen)
		if d.Err() != nil {
			return nil
		}
		if err := check(a); err != nil {
			d.Fail(err)
			return nil
		}
		out = append(out, a)
	}
	return out
}

// validateAddr accepts host:port with a numeric port 1-65535 and a host
// without control characters.
func validateAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%w: bad address: %v", ErrProtocol, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return protocolError("bad port in address")
	}
	if safetext.Text(host) != host {
		return protocolError("control characters in address")
	}
	return nil
}

// resolveAddrs replaces an unspecified advertised host (":8001",
// "0.0.0.0:8001", "[::]:8001") with the host the connection came from.
func resolveAddrs(addrs []string, remote net.Addr) []string {
	rhost, _, _ := net.SplitHostPort(remote.String())
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = rhost
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out
}

// baseTLS is the part shared by every connection: TLS 1.3 only, our ALPN,
// no resumption (each connection is fully authenticated).
func baseTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		NextProtos:             []string{alpn},
		SessionTicketsDisabled: true,
		Certificates:           []tls.Certificate{cert},
	}
}

// serverTLS requires a client certificate and checks it ourselves: a mesh
// member, or a joiner while an invite is open.
func (n *Node) serverTLS() *tls.Config {
	c := baseTLS(n.tlsCert())
	c.ClientAuth = tls.RequireAnyClientCert
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		_, err := n.checkPeer(cs, PeerID{}, true)
		return err
	}
	return c
}

// clientTLS skips the library's name-based verification and applies the
// same membership check; expect, if set, pins the remote ID.
func (n *Node) clientTLS(expect PeerID) *tls.Config {
	c := baseTLS(n.tlsCert())
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		_, err := n.checkPeer(cs, expect, false)
		return err
	}
	return c
}

// checkPeer is the whole admission decision for one TLS connection.
func (n *Node) checkPeer(cs tls.ConnectionState, expect PeerID, server bool) (peerRole, error) {
	if cs.Version != tls.VersionTLS13 {
		return 0, errors.New("tls version is not 1.3")
	}
	if cs.NegotiatedProtocol != alpn {
		return 0, fmt.Errorf("alpn %q is not %q", cs.NegotiatedProtocol, alpn)
	}
	if len(cs.PeerCertificates) == 0 {
		return 0, errors.New("no peer certificate")
	}
	leaf := cs.PeerCertificates[0]
	id := peerIDOf(leaf)
	switch {
	case id == n.self:
		return 0, errSelf
	case !expect.IsZero() && id != expect:
		return 0, fmt.Errorf("%w: got %s, want %s", errWrongID, id.Short(), expect.Short())
	}
	err := n.verifyMember(leaf)
	if err == nil {
		return roleMember, nil
	}
	if server && !errors.Is(err, errRevoked) && n.acceptsJoiner(id) {
		return roleJoiner, nil
	}
	return 0, err
}

// verifyMember checks that leaf is a member certificate of our mesh and
// not revoked. Only the mesh CA is trusted; peer-sent intermediates are not.
func (n *Node) verifyMember(leaf *x509.Certificate) error {
	n.mu.Lock()
	pool, revs := n.ident.caPool, n.revs
	n.mu.Unlock()
	return verifyMemberCert(leaf, pool, revs)
}

// verifyMemberCert checks leaf against the mesh CA pool and revocation list.
func verifyMemberCert(leaf *x509.Certificate, pool *x509.CertPool, revs *revocationList) error {
	if pool == nil {
		return errors.New("this node is not a member")
	}
	if leaf.IsCA || leaf.PublicKeyAlgorithm != x509.Ed25519 {
		return errors.New("peer certificate is not a member certificate")
	}
	opts := x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("peer certificate not issued by the mesh ca: %w", err)
	}
	if revs.has(peerIDOf(leaf)) {
		return errRevoked
	}
	return nil
}

// secureConn is an authenticated connection: TLS over TCP, or a QUIC
// connection's stream (quic.go).
type secureConn interface {
	net.Conn
	ConnectionState() tls.ConnectionState
}

// handshakeResult is an authenticated connection that finished HELLO.
type handshakeResult struct {
	conn     secureConn
	br       *bufio.Reader
	bw       *bufio.Writer
	batch    *batchConn // under tc; nil for a join's own connection
	role     peerRole
	id       PeerID
	name     string
	leaf     *x509.Certificate
	outbound bool
	hello    hello
	addrs    []string
	tiebreak uint64
	punched  bool // opened by hole punching: both sides dialed
	quic     bool // a punched QUIC connection (quic.go)
}

// handshake runs TLS, then (for members) the HELLO and revocation exchange,
// all under HandshakeTimeout. A joiner is returned right after TLS with
// role roleJoiner; the caller serves its JOIN.
func (n *Node) handshake(ctx context.Context, raw net.Conn, outbound bool, expect PeerID) (*handshakeResult, error) {
	raw.SetDeadline(time.Now().Add(n.cfg.HandshakeTimeout))
	batch := newBatchConn(raw, n.ioBufs)
	var tc *tls.Conn
	if outbound {
		tc = tls.Client(batch, n.clientTLS(expect))
	} else {
		tc = tls.Server(batch, n.serverTLS())
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	cs := tc.ConnectionState()
	role, err := n.checkPeer(cs, expect, !outbound)
	if err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	hs := newHandshakeResult(tc, cs, role, outbound)
	hs.batch = batch
	if role == roleJoiner {
		return hs, nil
	}
	if err := n.exchangeHello(hs); err != nil {
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	return hs, nil
}

func newHandshakeResult(tc secureConn, cs tls.ConnectionState, role peerRole, outbound bool) *handshakeResult {
	leaf := cs.PeerCertificates[0]
	hs := &handshakeResult{
		conn: tc, br: bufio.NewReaderSize(tc, bufSize), bw: bufio.NewWriterSize(tc, bufSize),
		role: role, id: peerIDOf(leaf), leaf: leaf, outbound: outbound,
		name: safetext.Name(leaf.Subject.CommonName),
	}
	if hs.name == "" {
		hs.name = defaultName(hs.id)
	}
	// Both ends derive the same value: a tie-break between two connections
	// that the same node initiated.
	if ekm, err := cs.ExportKeyingMaterial("meshfs-conn-v1", nil, 8); err == nil {
		hs.tiebreak = binary.BigEndian.Uint64(ekm)
	}
	return hs
}

// exchangeHello: the server sends HELLO first, then the client. Then the side
// with the older revocation list receives the newer one before anything else.
func (n *Node) exchangeHello(hs *handshakeResult) error {
	mine := n.hello(hs.conn.RemoteAddr())
	var err error
	if hs.outbound {
		if hs.hello, err = readHello(hs.br); err == nil {
			err = writeFlush(hs.bw, frameHello, encodeHello(mine))
		}
	} else {
		if err = writeFlush(hs.bw, frameHello, encodeHello(mine)); err == nil {
			hs.hello, err = readHello(hs.br)
		}
	}
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	hs.addrs = resolveAddrs(hs.hello.Addrs, hs.conn.RemoteAddr())
	return n.exchangeRevocations(hs, mine.RevVersion)
}

func (n *Node) exchangeRevocations(hs *handshakeResult, mine uint64) error {
	theirs := hs.hello.RevVersion
	switch {
	case mine > theirs:
		if err := writeFlush(hs.bw, frameRevocations, n.revocationBlob()); err != nil {
			return fmt.Errorf("send revocations: %w", err)
		}
	case theirs > mine:
		f, err := readFrame(hs.br, 0, nil)
		if err != nil {
			return fmt.Errorf("read revocations: %w", err)
		}
		if f.Type != frameRevocations {
			return protocolError("%v before the newer revocation list", f.Type)
		}
		if _, err := n.applyRevocations(f.Payload); err != nil {
			return err
		}
	}
	if n.isRevoked(hs.id) {
		return errRevoked
	}
	return nil
}

func readHello(br *bufio.Reader) (hello, error) {
	f, err := readFrame(br, 0, nil)
	if err != nil {
		return hello{}, err
	}
	if f.Type != frameHello {
		return hello{}, protocolError("%v before hello", f.Type)
	}
	return decodeHello(f.Payload)
}

// writeFlush writes one frame and flushes; used before the writer goroutine
// exists (handshake, join), so it is the only writer.
func writeFlush(bw *bufio.Writer, t frameType, payload []byte) error {
	if _, err := bw.Write(encodeFrame(t, payload)); err != nil {
		return err
	}
	return bw.Flush()
}
