package mesh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/internal/safetext"
	"github.com/meshfs/meshfs/internal/wire"
)

const maxCertLen = 16 << 10

// joinRequest is the JOIN payload: tokenID, proof, display name.
type joinRequest struct {
	TokenID []byte // 4 bytes
	Proof   []byte // 32 bytes
	Name    string
}

func encodeJoin(r joinRequest) []byte {
	var e wire.Encoder
	e.Raw(r.TokenID)
	e.Raw(r.Proof)
	e.Str(r.Name)
	return e.B
}

func decodeJoin(p []byte) (joinRequest, error) {
	d := wire.Decoder{B: p}
	r := joinRequest{TokenID: d.Fixed(4), Proof: d.Fixed(32), Name: d.Str(maxNameBytes)}
	if err := finish(&d); err != nil {
		return joinRequest{}, fmt.Errorf("decode join: %w", err)
	}
	return r, nil
}

// joinOK is the JOIN_OK payload: everything a new member needs to start.
type joinOK struct {
	Cert, CA    []byte // DER
	Revocations []byte // signed list, empty for version 0
	Peers       []byte // a PEERS payload
}

func encodeJoinOK(j joinOK) []byte {
	var e wire.Encoder
	e.Blob(j.Cert)
	e.Blob(j.CA)
	e.Blob(j.Revocations)
	e.Blob(j.Peers)
	return e.B
}

func decodeJoinOK(p []byte) (joinOK, error) {
	d := wire.Decoder{B: p}
	j := joinOK{Cert: d.Blob(maxCertLen), CA: d.Blob(maxCertLen),
		Revocations: d.Blob(capRevocations), Peers: d.Blob(capPeers)}
	if err := finish(&d); err != nil {
		return joinOK{}, fmt.Errorf("decode join ok: %w", err)
	}
	return j, nil
}

// exporterFor is the TLS keying material the JOIN proof is bound to.
func exporterFor(tc secureConn) ([]byte, error) {
	cs := tc.ConnectionState()
	return cs.ExportKeyingMaterial(joinLabel, nil, 32)
}

// serveJoin is the admin's side of a pre-member connection: one JOIN frame
// under the handshake deadline, then JOIN_OK or JOIN_ERR, then close.
func (n *Node) serveJoin(hs *handshakeResult) {
	deadline := time.Now().Add(n.cfg.HandshakeTimeout)
	hs.conn.SetDeadline(deadline)
	ip, _, _ := net.SplitHostPort(hs.conn.RemoteAddr().String())
	log := n.log.With("addr", hs.conn.RemoteAddr().String(), "joiner", hs.id,
		"member", safetext.Name(hs.leaf.Subject.CommonName))
	reply, code, err := n.admitJoiner(hs, ip, deadline)
	if err != nil {
		log.Warn("joiner not admitted", "err", err,
			"fix", "nothing: the joiner may try again with the same invite")
		return
	}
	if code != 0 {
		log.Warn("invite refused", "reason", code, "fix", joinFix(code))
		writeFlush(hs.bw, frameJoinErr, encodeReason(code))
		return
	}
	if err := writeFlush(hs.bw, frameJoinOK, reply); err != nil {
		log.Warn("joiner not admitted: the reply was lost", "err", err,
			"fix", "give the joiner a new invite (meshfs invite)")
		return
	}
	log.Info("member admitted")
}

// admitJoiner reads and checks the JOIN; on success it issues the member
// certificate, adds the member to the roster and returns the JOIN_OK
// payload. An anchor, which holds no invites, relays it to the admin and
// returns the admin's answer by deadline.
func (n *Node) admitJoiner(hs *handshakeResult, ip string, deadline time.Time) ([]byte, reasonCode, error) {
	f, err := readFrame(hs.br, 0, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("read join: %w", err)
	}
	if f.Type != frameJoin {
		return nil, 0, protocolError("%v from a pre-member", f.Type)
	}
	req, err := decodeJoin(f.Payload)
	if err != nil {
		return nil, 0, err
	}
	exp, err := exporterFor(hs.conn)
	if err != nil {
		return nil, 0, fmt.Errorf("export keying material: %w", err)
	}
	if n.invites == nil {
		return n.relayJoin(joinRelay{IP: ip, Exporter: exp, Cert: hs.leaf.Raw, Join: f.Payload}, deadline)
	}
	return n.admit(ip, hs.leaf, exp, req)
}

// admit redeems the invite of a JOIN whose proof is bound to exporter and
// the joiner's certificate leaf, counting a failure against ip, and on
// success issues the member certificate.
func (n *Node) admit(ip string, leaf *x509.Certificate, exporter []byte, req joinRequest) ([]byte, reasonCode, error) {
	pub, ok := leaf.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, reasonJoinFailed, nil
	}
	id := peerIDOf(leaf)
	if n.isRevoked(id) {
		return nil, reasonRevoked, nil
	}
	if code := n.invites.redeem(ip, req.TokenID, req.Proof, exporter, leaf.Raw, id, time.Now()); code != 0 {
		return nil, code, nil
	}
	name := safetext.Name(req.Name)
	if name == "" {
		name = defaultName(id)
	}
	return n.issueMember(pub, id, name)
}

// issueMember signs the joiner's certificate and builds JOIN_OK.
func (n *Node) issueMember(pub ed25519.PublicKey, id PeerID, name string) ([]byte, reasonCode, error) {
	n.mu.Lock()
	ca, caKey := n.ident.ca, n.ident.caKey
	n.mu.Unlock()
	cert, err := issueCert(ca, caKey, pub, name)
	if err != nil {
		return nil, reasonJoinFailed, nil
	}
	n.mu.Lock()
	n.learn(peerEntry{ID: id, Cert: cert.Raw}, name)
	self := peerEntry{ID: n.self, Cert: n.ident.cert.Raw, Record: n.ownRec.wire()}
	n.mu.Unlock()
	n.saveRoster()
	// The admin lists itself too: the joiner then knows its ID and name.
	self.Addrs = n.advertised()
	payload := encodePeers(append([]peerEntry{self}, n.rosterEntries()...))
	return encodeJoinOK(joinOK{Cert: cert.Raw, CA: ca.Raw, Revocations: n.revocationBlob(), Peers: payload}), 0, nil
}

// redeem is the joiner's side, run by Start when this node is not a member:
// it tries each Join address until one admits it. A refusal by the admin,
// or a node that is not of the invite's mesh, ends it at once; a failure
// of the network (refused, reset, timed out: the node is starting, or
// busy with others joining) is tried again with backoff, said in the log,
// for up to JoinRetryFor.
func (n *Node) redeem(ctx context.Context) error {
	backoff, deadline := time.Second, time.Now().Add(n.cfg.JoinRetryFor)
	for {
		err := n.redeemOnce(ctx)
		if err == nil || !transientJoin(err) || time.Now().Add(backoff).After(deadline) {
			return err
		}
		n.log.Warn("could not join the mesh yet; trying again", "in", backoff, "err", err,
			"fix", "nothing if the node you join through is starting or busy; else check the --join address and that its port is reachable")
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (stopped: %w)", err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// redeemOnce tries each Join address once.
func (n *Node) redeemOnce(ctx context.Context) error {
	var errs []error
	for _, addr := range n.cfg.Join {
		err := n.joinVia(ctx, addr)
		if err == nil {
			return nil
		}
		var refused *refusedError
		if errors.As(err, &refused) {
			return err
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return fmt.Errorf("join mesh: no join address: %w", ErrNeedInvite)
	}
	return fmt.Errorf("join mesh: %w", errors.Join(errs...))
}

// transientJoin reports whether a failed join may succeed if tried again:
// the network failed, and nobody refused the invite.
func transientJoin(err error) bool {
	if errors.Is(err, ErrAdminUnreachable) {
		return true
	}
	if errors.Is(err, ErrInviteRefused) || errors.Is(err, ErrNeedInvite) || errors.Is(err, context.Canceled) {
		return false
	}
	var op *net.OpError // dial, read or write; a TLS alert from the other side is one too, and final
	if errors.As(err, &op) && op.Op != "remote error" {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// refusedError is a JOIN_ERR from the admin.
type refusedError struct {
	addr   string
	reason reasonCode
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("join mesh via %s: %v: %s", e.addr, ErrInviteRefused, e.reason)
}

func (e *refusedError) Unwrap() error { return ErrInviteRefused }

// joinVia runs the whole JOIN exchange with one address.
func (n *Node) joinVia(ctx context.Context, addr string) error {
	raw, err := n.dialConn(ctx, &net.Dialer{Timeout: n.cfg.HandshakeTimeout}, addr)
	if err != nil {
		return fmt.Errorf("join via %s: %w", addr, err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(2 * n.cfg.HandshakeTimeout))
	cert, err := selfSignedCert(n.ident.key, n.ownName())
	if err != nil {
		return err
	}
	cfg := baseTLS(cert)
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error { return checkJoinServer(cs, n.joinTok) }
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("join via %s: tls handshake: %w", addr, err)
	}
	return n.exchangeJoin(tc, addr, cert.Leaf.Raw)
}

// exchangeJoin sends JOIN and handles the answer.
func (n *Node) exchangeJoin(tc *tls.Conn, addr string, certDER []byte) error {
	exp, err := exporterFor(tc)
	if err != nil {
		return fmt.Errorf("join via %s: %w", addr, err)
	}
	proof := joinProof(joinKey(n.joinTok.secret[:]), exp, certDER)
	hs := newHandshakeResult(tc, tc.ConnectionState(), roleMember, true)
	req := joinRequest{TokenID: n.joinTok.id[:], Proof: proof, Name: n.ownName()}
	if err := writeFlush(hs.bw, frameJoin, encodeJoin(req)); err != nil {
		return fmt.Errorf("join via %s: %w", addr, err)
	}
	f, err := readFrame(hs.br, 0, nil)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// A busy admin, or one behind an anchor, may take longer than our
		// deadline. It may have admitted us and lost the answer: the admin
		// admits the same joiner again on the same invite, so trying again
		// is safe.
		return fmt.Errorf("join via %s: no answer to the join in time: %w", addr, err)
	}
	if err != nil {
		// TLS 1.3 clients finish before the server checks their certificate:
		// a member that is not the admin refuses us here, on the first read.
		return fmt.Errorf("the node at %s did not accept the invite; only the mesh admin can admit new members: %w (%v)",
			addr, ErrInviteRefused, err)
	}
	switch f.Type {
	case frameJoinErr:
		code, _ := decodeReason(f.Payload)
		if code == reasonAdminUnreachable { // an anchor that lost the admin: transient
			return fmt.Errorf("join via %s: %w", addr, ErrAdminUnreachable)
		}
		return &refusedError{addr: addr, reason: code}
	case frameJoinOK:
		return n.acceptJoin(f.Payload, hs)
	}
	return fmt.Errorf("join via %s: %w", addr, protocolError("%v in answer to join", f.Type))
}

// checkJoinServer pins the mesh CA from the token: the server must present
// a CA certificate with the token's fingerprint, and a leaf it signed.
func checkJoinServer(cs tls.ConnectionState, tok *token) error {
	if cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != alpn {
		return errors.New("server does not speak meshfs/1 over tls 1.3")
	}
	certs := cs.PeerCertificates
	if len(certs) < 2 {
		return errors.New("server sent no mesh ca certificate")
	}
	for _, ca := range certs[1:] {
		if !ca.IsCA || !bytes.Equal(caFingerprint(ca), tok.caFP[:]) {
			continue
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	return errors.New("server is not in the mesh the invite is for (ca fingerprint mismatch)")
}

// acceptJoin stores what the admin sent and makes this node a member.
// node.crt is written last: its presence is what "member" means on disk.
func (n *Node) acceptJoin(payload []byte, hs *handshakeResult) error {
	j, err := decodeJoinOK(payload)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	cert, err1 := x509.ParseCertificate(j.Cert)
	ca, err2 := x509.ParseCertificate(j.CA)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("join: bad certificate from admin: %w", err)
	}
	if !bytes.Equal(caFingerprint(ca), n.joinTok.caFP[:]) {
		return errors.New("join: admin sent a ca that is not the invite's")
	}
	ident := *n.ident
	if err := ident.setMembership(cert, ca); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	revs := &revocationList{}
	if len(j.Revocations) > 0 {
		if revs, err = decodeRevocations(j.Revocations); err == nil {
			err = revs.verify(ca.PublicKey.(ed25519.PublicKey))
		}
		if err != nil {
			return fmt.Errorf("join: %w", err)
		}
	}
	entries, err := decodePeers(j.Peers)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	return n.storeMembership(&ident, revs, entries, hs)
}

func (n *Node) storeMembership(ident *identity, revs *revocationList, entries []peerEntry, hs *handshakeResult) error {
	if revs.Version > 0 {
		if err := atomicfile.Write(filepath.Join(n.dir, fileRevocations), revs.encode(), 0o600); err != nil {
			return err
		}
	}
	n.mu.Lock()
	n.revs = revs
	for _, pe := range entries {
		if pe.ID == n.self || pe.ID.IsZero() || revs.has(pe.ID) {
			continue
		}
		// The admin is trusted, but each entry still has to prove itself
		// like in any PEERS frame; one that does not is skipped.
		name, err := verifyEntry(pe.ID, pe.Cert, ident.caPool, revs)
		if err != nil {
			n.log.Warn("member from the admin's list skipped: its certificate does not check", "peer", pe.ID, "err", err,
				"fix", "nothing: the member is checked again when it connects")
			continue
		}
		pe.Addrs = resolveAddrs(pe.Addrs, hs.conn.RemoteAddr())
		n.learn(pe, name)
		if len(pe.Record) > 0 {
			if r, err := entryRecord(pe); err == nil {
				n.takeRecord(r) // the admin passes on only verified records; a bad one is just not taken
			}
		}
		delete(n.dials, idKey(pe.ID)) // they do not know us yet: dial at once
	}
	n.mu.Unlock()
	n.saveRoster()
	if err := writeCert(filepath.Join(n.dir, fileCACert), ident.ca); err != nil {
		return err
	}
	if err := writeCert(filepath.Join(n.dir, fileNodeCert), ident.cert); err != nil {
		return err
	}
	n.mu.Lock()
	n.ident = ident
	n.mu.Unlock()
	n.joinTok = nil
	n.log.Info("joined mesh", "mesh", meshID(ident.ca), "name", n.Name())
	return nil
}
