package mesh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/meshfs/meshfs/internal/wire"
)

// Hole punching. Two members behind NATs cannot dial each other's listen
// port, but each reaches a third member (the introducer), and each NAT
// already forwards that connection's replies. The introducer sees both
// connections' outside addresses. On PUNCH_REQ it sends each side a PUNCH
// naming the other and the address it sees the other at; both then dial
// that address from the local port of their own connection to the
// introducer. A NAT that keeps a local port's outside port for every
// destination (as Linux masquerading and most home routers do) lets the
// crossing SYNs in as replies: a TCP simultaneous open. TLS then runs as
// on any connection, pinned to the expected member, with the lower ID as
// the client so both ends agree without talking. A NAT that picks a new
// outside port per destination defeats it; the two then stay unconnected
// and data flows through members both reach.
const (
	// punchTimeout bounds one attempt: dials and the TLS handshake.
	punchTimeout = 10 * time.Second
	// punchRetry is the pause between dials that fail at once (a reset
	// from a NAT that has not seen our side yet).
	punchRetry = 200 * time.Millisecond
	// introduceGap is the least time between two introductions of the
	// same pair, and between two requests for the same member: both
	// sides ask at about the same time, and each introduction costs both
	// a burst of dials.
	introduceGap = 5 * time.Second
	// punchReqEvery is the least gap between two PUNCH_REQ (or two PUNCH)
	// a connection may make this node act on: a member meeting a mesh
	// behind a NAT asks for one introduction per member it cannot dial.
	punchReqEvery = 100 * time.Millisecond
	// punchAfter is how long a dial to a member may hang before it asks
	// for an introduction as well.
	punchAfter = time.Second
)

// punch is a PUNCH payload: the member to dial, where over TCP, and its
// UDP candidates (since protocol 8; none when either side has no UDP).
type punch struct {
	Peer PeerID
	Addr string
	UDP  []string
}

func encodePunch(p punch) []byte {
	var e wire.Encoder
	e.Raw(p.Peer[:])
	e.Str(p.Addr)
	e.B = append(e.B, encodeAddrList(p.UDP)...)
	return e.B
}

func decodePunch(b []byte) (punch, error) {
	d := wire.Decoder{B: b}
	p := punch{Peer: readPeerID(&d), Addr: d.Str(maxAddrLen)}
	if d.Err() == nil {
		if err := validateAddr(p.Addr); err != nil {
			d.Fail(err)
		}
	}
	p.UDP = decodeAddrList(&d)
	if err := finish(&d); err != nil {
		return punch{}, fmt.Errorf("decode punch: %w", err)
	}
	return p, nil
}

// encodeAddrList is a u8 count (<= maxCandidates) of host:port strings:
// the payload of CANDIDATES and the end of PUNCH.
func encodeAddrList(addrs []string) []byte {
	var e wire.Encoder
	addrs = addrs[:min(len(addrs), maxCandidates)]
	e.U8(uint8(len(addrs)))
	for _, a := range addrs {
		e.Str(a)
	}
	return e.B
}

// decodeAddrList reads what encodeAddrList wrote; every address must be
// a numeric IP and port.
func decodeAddrList(d *wire.Decoder) []string {
	return decodeList(d, maxCandidates, "udp candidates", validateCandidate)
}

// validateCandidate accepts a numeric IP and a port other than 0.
func validateCandidate(a string) error {
	if ap, err := netip.ParseAddrPort(a); err != nil || ap.Port() == 0 {
		return protocolError("bad udp candidate")
	}
	return nil
}

// decodeCandidates parses a CANDIDATES payload.
func decodeCandidates(b []byte) ([]string, error) {
	d := wire.Decoder{B: b}
	c := decodeAddrList(&d)
	if err := finish(&d); err != nil {
		return nil, fmt.Errorf("decode candidates: %w", err)
	}
	return c, nil
}

// handleCandidates keeps a member's UDP candidates for introductions.
func (n *Node) handleCandidates(from *peer, payload []byte) error {
	c, err := decodeCandidates(payload)
	if err != nil {
		return err
	}
	n.mu.Lock()
	from.udp = c
	n.mu.Unlock()
	return nil
}

func decodePunchReq(b []byte) (PeerID, error) {
	d := wire.Decoder{B: b}
	id := readPeerID(&d)
	if err := finish(&d); err != nil {
		return PeerID{}, fmt.Errorf("decode punch request: %w", err)
	}
	return id, nil
}

// noteLinks keeps the members a PEERS sender says it is connected to. A
// PEERS that starts with the sender's own entry is its whole list and
// replaces what it said before; one without (members passed on by gossip,
// overlay.go) only adds.
func (n *Node) noteLinks(from *peer, entries []peerEntry) {
	whole := len(entries) > 0 && entries[0].ID == from.id
	n.mu.Lock()
	defer n.mu.Unlock()
	if whole || from.links == nil {
		from.links = make(map[PeerID]struct{})
	}
	for _, pe := range entries {
		if pe.Linked && pe.ID != from.id && len(from.links) < maxRoster {
			from.links[pe.ID] = struct{}{}
		}
	}
}

// throughLocked lists the connected members that report a connection to
// id, by ID (mu held).
func (n *Node) throughLocked(id PeerID) []PeerID {
	var out []PeerID
	for qid, q := range n.peers {
		if _, ok := q.links[id]; ok {
			out = append(out, qid)
		}
	}
	slices.SortFunc(out, func(a, b PeerID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// askIntroduction sends PUNCH_REQ for member id to one connected member
// that reaches it, at most once per introduceGap, and reports whether it
// did. Only a member we dialed can introduce: the other side of the punch
// must dial the outside address of our connection to it, and a connection
// it dialed to us ends at our listen port, which a second socket cannot
// bind.
func (n *Node) askIntroduction(id PeerID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.peers[id] != nil || n.closed || n.cfg.Dial != nil { // a custom Dial cannot punch (handlePunch)
		return false
	}
	if last, ok := n.asked[id]; ok && time.Since(last) < introduceGap {
		return false
	}
	for _, qid := range n.throughLocked(id) {
		if q := n.peers[qid]; q.outbound && !q.quic && q.trySend(encodeFrame(framePunchReq, id[:])) {
			n.asked[id] = time.Now()
			pruneOld(n.asked, introduceGap)
			return true
		}
	}
	return false
}

// handlePunchReq introduces from to the member it names, when this node
// is connected to both: each gets a PUNCH with the other's outside
// address as this node sees it.
func (n *Node) handlePunchReq(from *peer, payload []byte) error {
	target, err := decodePunchReq(payload)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	to := n.peers[target]
	if to == nil || target == from.id {
		return nil // gone meanwhile, or nonsense: nothing to introduce
	}
	pair := pairKey(from.id, target)
	if last, ok := n.introduced[pair]; ok && time.Since(last) < introduceGap {
		return nil
	}
	n.introduced[pair] = time.Now()
	pruneOld(n.introduced, introduceGap)
	// UDP candidates go to both or neither: the two must try the same
	// transports in the same order to meet.
	fromUDP, toUDP := from.udp, to.udp
	if len(fromUDP) == 0 || len(toUDP) == 0 {
		fromUDP, toUDP = nil, nil
	}
	from.trySend(encodeFrame(framePunch, encodePunch(punch{Peer: target, Addr: to.remote, UDP: toUDP})))
	to.trySend(encodeFrame(framePunch, encodePunch(punch{Peer: from.id, Addr: from.remote, UDP: fromUDP})))
	from.log.Debug("introduced for hole punching", "to", to.name)
	return nil
}

// handlePunch starts a punch toward the member a PUNCH names, from the
// local port of our connection to the introducer. It ignores a PUNCH for a
// member already connected, unknown, or being punched.
func (n *Node) handlePunch(via *peer, payload []byte) error {
	pu, err := decodePunch(payload)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.roster[pu.Peer]
	switch {
	case n.closed || pu.Peer == n.self || n.peers[pu.Peer] != nil || n.revs.has(pu.Peer):
		return nil
	case m == nil || m.Cert == nil || n.punching[pu.Peer] || !via.outbound || via.quic || n.noPunch:
		return nil
	case n.cfg.Dial != nil:
		return nil // punching binds a local TCP port: a custom transport has none
	}
	n.punching[pu.Peer] = true
	n.wg.Add(1)
	go n.punch(pu, m.Name, via)
	return nil
}

// punch tries QUIC first when the PUNCH carries UDP candidates (and this
// node has UDP), for up to quicPunchTimeout; then, or without UDP, it
// dials pu.Addr over TCP from via's local address until a connection
// opens or punchTimeout passes, and runs the handshake on it. Both sides
// follow the same sequence, so a failed QUIC attempt leaves them in step
// for TCP.
func (n *Node) punch(pu punch, name string, via *peer) {
	defer n.wg.Done()
	defer func() {
		n.mu.Lock()
		delete(n.punching, pu.Peer)
		n.mu.Unlock()
	}()
	if len(pu.UDP) > 0 && n.udp != nil {
		err := n.tryQUIC(pu)
		if err == nil {
			n.log.Info("punched a direct connection through NAT", "member", name, "transport", "quic",
				"introducer", via.name)
			return
		}
		via.log.Info("could not punch over udp; trying tcp", "to", name, "err", err)
	}
	ctx, cancel := context.WithTimeout(n.ctx, punchTimeout)
	defer cancel()
	raw, err := n.punchDial(ctx, pu, via.conn.LocalAddr())
	if err == nil {
		err = n.punched(ctx, raw, pu.Peer)
	}
	if err != nil {
		via.log.Info("could not punch through NAT; data goes through members both reach",
			"to", name, "at", pu.Addr, "err", err)
		return
	}
	n.log.Info("punched a direct connection through NAT", "member", name, "transport", "tcp",
		"at", pu.Addr, "introducer", via.name)
}

// tryQUIC is the QUIC attempt of a punch: quicPunchTimeout to connect,
// then HELLO under HandshakeTimeout.
func (n *Node) tryQUIC(pu punch) error {
	ctx, cancel := context.WithTimeout(n.ctx, quicPunchTimeout)
	defer cancel()
	conn, err := n.punchQUIC(ctx, pu)
	if err != nil {
		return err
	}
	return n.punchedQUIC(conn, pu.Peer)
}

// punchDial dials addr from local, again after each quick failure, until
// a connection opens or ctx ends. A SYN that a NAT drops is retransmitted
// by the kernel meanwhile; the other side's SYN, crossing ours, opens it.
func (n *Node) punchDial(ctx context.Context, pu punch, local net.Addr) (net.Conn, error) {
	d := net.Dialer{LocalAddr: local, Control: reuseAddr}
	for {
		raw, err := d.DialContext(ctx, "tcp", pu.Addr)
		if err == nil {
			return raw, nil
		}
		if n.isConnected(pu.Peer) {
			return nil, errDuplicate // met another way meanwhile
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(punchRetry):
		}
	}
}

// punched runs the handshake on a punched connection and keeps it. Both
// sides dialed, so the lower ID is the TLS client.
func (n *Node) punched(ctx context.Context, raw net.Conn, id PeerID) error {
	if !n.admitOutbound(raw) {
		raw.Close()
		return ErrClosed
	}
	defer n.release(raw)
	tuneConn(raw)
	client := bytes.Compare(n.self[:], id[:]) < 0
	hs, err := n.handshake(ctx, raw, client, id)
	if err == nil {
		hs.punched = true
		err = n.keepPunched(hs)
	}
	if err != nil {
		raw.Close()
	}
	if errors.Is(err, errDuplicate) {
		return nil
	}
	return err
}

// keepPunched registers a punched connection that finished HELLO and
// serves it on its own goroutine.
func (n *Node) keepPunched(hs *handshakeResult) error {
	p, old, err := n.attach(hs, true)
	if err != nil {
		return err
	}
	go func() { // counted in n.wg by register
		defer n.wg.Done()
		n.servePeer(p, old)
	}()
	return nil
}

// mayPunch reports whether a member at addr may be behind a NAT: not on
// this machine. A loopback dial that hangs is a busy node, and punching
// it would only add connections.
func mayPunch(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return err == nil && (ip == nil || !ip.IsLoopback())
}

// unreached reports whether err is a dial that got no TCP connection to
// any of addrs that may be behind a NAT: what punching can help with. A
// connection that opened and then failed its handshake reached its
// member, or someone else.
func unreached(err error, addrs []string) bool {
	var op *net.OpError
	if err == nil || !errors.As(err, &op) || op.Op != "dial" {
		return false
	}
	return slices.ContainsFunc(addrs, mayPunch)
}

// link says how the connection was made.
func (p *peer) link() Link {
	if p.punched {
		return LinkPunched
	}
	return LinkDirect
}

// transport names the connection's transport: "tcp" or "quic".
func (p *peer) transport() string {
	if p.quic {
		return "quic"
	}
	return "tcp"
}

// isConnected reports whether member id has a live connection.
func (n *Node) isConnected(id PeerID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peers[id] != nil
}

// pairKey names an unordered pair of members.
func pairKey(a, b PeerID) [2]PeerID {
	if bytes.Compare(a[:], b[:]) > 0 {
		a, b = b, a
	}
	return [2]PeerID{a, b}
}

// pruneOld drops entries older than age, keeping a rate-limit map as
// small as the requests of the last moments.
func pruneOld[K comparable](m map[K]time.Time, age time.Duration) {
	for k, t := range m {
		if time.Since(t) >= age {
			delete(m, k)
		}
	}
}
