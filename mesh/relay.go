package mesh

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/meshfs/meshfs/internal/wire"
)

// Joining through an anchor. Only the admin holds the CA key and the
// invites, so an anchor (Config.Anchor) that a joiner reaches passes the
// JOIN on over its own member connection to the admin: JOIN_RELAY carries
// the JOIN, the joiner's certificate, the TLS exporter value of the
// joiner's session with the anchor (the proof is bound to it) and the
// joiner's source IP (for the per-IP failure limit). The admin checks the
// proof as if the joiner had come to it, and answers JOIN_RELAY_RESULT
// with JOIN_OK's payload or the refusal, which the anchor hands to the
// joiner. The admin trusts the anchor, a member, for the exporter and the
// IP only: without the invite's secret nobody can make a proof.

const (
	// maxRelayWaits bounds the joins one anchor relays at once.
	maxRelayWaits = 32
	// maxRelaying bounds the relayed joins the admin serves at once
	// (each may fsync the invite list and the roster).
	maxRelaying = 8
	// relayIPLen bounds the joiner IP in JOIN_RELAY (an IPv6 literal with
	// a zone fits).
	relayIPLen = 64
)

// acceptsJoiner reports whether the certificate of id, which is not a
// member's, may finish TLS as a joiner: at the admin while an invite is
// open to it, at an anchor always (only the admin knows which invites are
// open).
func (n *Node) acceptsJoiner(id PeerID) bool {
	return n.invites.open(id, time.Now()) || n.cfg.Anchor && n.invites == nil
}

// joinRelay is the JOIN_RELAY payload.
type joinRelay struct {
	ID       uint64 // the anchor's request ID, echoed in the result
	IP       string // the joiner's source IP as the anchor sees it
	Exporter []byte // 32 bytes: the joiner↔anchor session's exporter (joinLabel)
	Cert     []byte // the joiner's self-signed certificate (DER)
	Join     []byte // the JOIN payload as the joiner sent it
}

func encodeJoinRelay(r joinRelay) []byte {
	var e wire.Encoder
	e.U64(r.ID)
	e.Str(r.IP)
	e.Raw(r.Exporter)
	e.Blob(r.Cert)
	e.Blob(r.Join)
	return e.B
}

func decodeJoinRelay(p []byte) (joinRelay, error) {
	d := wire.Decoder{B: p}
	r := joinRelay{ID: d.U64(), IP: d.Str(relayIPLen)}
	if d.Err() == nil && net.ParseIP(r.IP) == nil {
		d.Fail(protocolError("joiner ip is not an ip address"))
	}
	r.Exporter = d.Fixed(32)
	r.Cert = d.Blob(maxCertLen)
	r.Join = d.Blob(capJoin)
	if err := finish(&d); err != nil {
		return joinRelay{}, fmt.Errorf("decode join relay: %w", err)
	}
	return r, nil
}

// relayResult is the JOIN_RELAY_RESULT payload: a reason code (0 for
// admitted) and, when admitted, the JOIN_OK payload for the joiner.
type relayResult struct {
	ID   uint64
	Code reasonCode
	OK   []byte
}

func encodeRelayResult(r relayResult) []byte {
	var e wire.Encoder
	e.U64(r.ID)
	e.U8(uint8(r.Code))
	e.Blob(r.OK)
	return e.B
}

func decodeRelayResult(p []byte) (relayResult, error) {
	d := wire.Decoder{B: p}
	r := relayResult{ID: d.U64(), Code: reasonCode(d.U8()), OK: d.Blob(capJoinOK)}
	if err := finish(&d); err != nil {
		return relayResult{}, fmt.Errorf("decode join relay result: %w", err)
	}
	return r, nil
}

// relayWait is one JOIN an anchor relays, waiting for the admin's answer.
type relayWait struct {
	admin PeerID           // only the admin's connection may answer
	done  chan relayResult // buffered: the reader never blocks on it
}

// relayJoin is the anchor's side: it sends r to the connected admin and
// waits for the answer until shortly before deadline (the joiner's), so
// that the answer still reaches the joiner in time. Every failure of the
// relay is the transient "admin not reachable".
func (n *Node) relayJoin(r joinRelay, deadline time.Time) ([]byte, reasonCode, error) {
	w, admin := n.startRelay(&r)
	if w == nil {
		return nil, reasonAdminUnreachable, nil
	}
	defer n.endRelay(r.ID)
	ctx, cancel := context.WithDeadline(n.ctx, deadline.Add(-n.cfg.HandshakeTimeout/10))
	defer cancel()
	if err := admin.send(ctx, admin.ctrl, encodeFrame(frameJoinRelay, encodeJoinRelay(r))); err != nil {
		return nil, reasonAdminUnreachable, nil
	}
	select {
	case res := <-w.done:
		if res.Code == 0 && len(res.OK) == 0 {
			res.Code = reasonJoinFailed
		}
		return res.OK, res.Code, nil
	case <-ctx.Done():
	case <-admin.closed:
	}
	return nil, reasonAdminUnreachable, nil
}

// startRelay registers a relay to the connected admin and gives r its
// request ID; nil when the admin is not connected or too many joins wait.
func (n *Node) startRelay(r *joinRelay) (*relayWait, *peer) {
	n.mu.Lock()
	defer n.mu.Unlock()
	admin := n.adminPeerLocked()
	if admin == nil || len(n.relays) >= maxRelayWaits {
		return nil, nil
	}
	n.relayID++
	r.ID = n.relayID
	w := &relayWait{admin: admin.id, done: make(chan relayResult, 1)}
	n.relays[r.ID] = w
	return w, admin
}

func (n *Node) endRelay(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.relays, id)
}

// adminPeerLocked is the connection to the member whose verified record
// says it is the admin (mu held). The flag is the member's own word: a
// member that lies about it gets joins it cannot admit, and only makes
// them fail (the joiner checks the certificate against the invite's CA).
func (n *Node) adminPeerLocked() *peer {
	for id, p := range n.peers {
		if m := n.roster[id]; m != nil && m.Record.admin() {
			return p
		}
	}
	return nil
}

// pinnedLocked reports whether the partial mesh keeps the connection to
// q whatever its size (mu held): an anchor's to the admin, and the
// admin's to an anchor, since the anchor relays joins over it.
func (n *Node) pinnedLocked(q *peer) bool {
	m := n.roster[q.id]
	if m == nil {
		return false
	}
	return n.cfg.Anchor && m.Record.admin() || n.invites != nil && m.Record.anchor()
}

// adminToDialLocked is the admin's ID when this node is an anchor without
// a connection to it and knows an address of it (mu held).
func (n *Node) adminToDialLocked() (PeerID, bool) {
	if !n.cfg.Anchor || n.invites != nil || n.adminPeerLocked() != nil {
		return PeerID{}, false
	}
	for id, m := range n.roster {
		if m.Record.admin() && id != n.self && !n.revs.has(id) && m.dialable() {
			return id, true
		}
	}
	return PeerID{}, false
}

// handleRelayResult hands the admin's answer to the waiting join (reader
// goroutine). An answer nobody waits for any more (the joiner's deadline
// passed) is dropped; one from a member the request did not go to is too.
func (n *Node) handleRelayResult(from *peer, payload []byte) error {
	res, err := decodeRelayResult(payload)
	if err != nil {
		return err
	}
	n.mu.Lock()
	w := n.relays[res.ID]
	n.mu.Unlock()
	if w == nil || w.admin != from.id {
		from.log.Debug("join relay answer dropped: nobody waits for it", "request", res.ID)
		return nil
	}
	select {
	case w.done <- res:
	default: // answered twice: the first one counts
	}
	return nil
}

// handleJoinRelay is the admin's side (reader goroutine). The JOIN is
// served on its own goroutine, at most maxRelaying at once: issuing a
// member writes files, and the reader must not block. A node that is not
// the admin, or has too many relayed joins, answers "admin not reachable"
// at once.
func (n *Node) handleJoinRelay(from *peer, payload []byte) error {
	r, err := decodeJoinRelay(payload)
	if err != nil {
		return err
	}
	req, err := decodeJoin(r.Join)
	if err != nil {
		return err // an honest anchor relays only a JOIN it decoded
	}
	if !n.startRelaying() {
		from.trySend(encodeFrame(frameJoinRelayResult,
			encodeRelayResult(relayResult{ID: r.ID, Code: reasonAdminUnreachable})))
		return nil
	}
	go func() { // counted in n.wg by startRelaying
		defer n.wg.Done()
		defer n.endRelaying()
		n.serveRelayed(from, r, req)
	}()
	return nil
}

// startRelaying takes a slot for a relayed join and counts its goroutine
// in n.wg, under the lock that checks closed.
func (n *Node) startRelaying() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.invites == nil || n.relaying >= maxRelaying {
		return false
	}
	n.relaying++
	n.wg.Add(1)
	return true
}

func (n *Node) endRelaying() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.relaying--
}

// serveRelayed admits or refuses a relayed JOIN and answers the anchor.
func (n *Node) serveRelayed(anchor *peer, r joinRelay, req joinRequest) {
	log := anchor.log.With("joiner-ip", r.IP)
	res := relayResult{ID: r.ID}
	leaf, err := x509.ParseCertificate(r.Cert)
	if err != nil {
		res.Code = reasonJoinFailed
	} else {
		res.OK, res.Code, err = n.admit(r.IP, leaf, r.Exporter, req)
	}
	switch {
	case err != nil || res.Code == 0 && res.OK == nil:
		res.Code = reasonJoinFailed
		log.Warn("joiner not admitted", "via", anchor.name, "err", err,
			"fix", "nothing: the joiner may try again with the same invite")
	case res.Code != 0:
		log.Warn("invite refused", "via", anchor.name, "reason", res.Code, "fix", joinFix(res.Code))
	default:
		log.Info("member admitted", "via", anchor.name)
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HandshakeTimeout)
	defer cancel()
	if err := anchor.send(ctx, anchor.ctrl, encodeFrame(frameJoinRelayResult, encodeRelayResult(res))); err != nil && res.Code == 0 {
		log.Warn("joiner not admitted: the reply was lost", "via", anchor.name, "err", err,
			"fix", "give the joiner a new invite (meshfs invite)")
	}
}
