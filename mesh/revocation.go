package mesh

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/internal/wire"
)

// maxRevoked bounds the list: its signed form (128 KiB) fits a REVOCATIONS
// frame, and a JOIN_OK frame with room to spare for the rest.
const maxRevoked = 4096

// revocationList is the mesh's CA-signed list of removed members. Version 0
// is the empty list every mesh starts with; it is never signed or sent.
type revocationList struct {
	Version  uint64
	IssuedAt time.Time
	Revoked  []PeerID
	Sig      []byte // Ed25519 signature by the CA key over body()
}

// body is the signed part: version u64, issuedAt i64 (unix nanos), count
// u32, then the IDs.
func (l *revocationList) body() []byte {
	var e wire.Encoder
	e.U64(l.Version)
	e.U64(uint64(l.IssuedAt.UnixNano()))
	e.U32(uint32(len(l.Revoked)))
	for _, id := range l.Revoked {
		e.Raw(id[:])
	}
	return e.B
}

// encode returns the REVOCATIONS payload (also the on-disk form): the body
// followed by the 64-byte signature.
func (l *revocationList) encode() []byte {
	return append(l.body(), l.Sig...)
}

// decodeRevocations parses a REVOCATIONS payload without verifying it.
func decodeRevocations(p []byte) (*revocationList, error) {
	d := wire.Decoder{B: p}
	l := &revocationList{Version: d.U64(), IssuedAt: time.Unix(0, int64(d.U64()))}
	n := d.U32()
	if d.Err() == nil && n > uint32(maxRevoked) {
		return nil, protocolError("revocation list of %d ids", n)
	}
	for i := uint32(0); i < n && d.Err() == nil; i++ {
		l.Revoked = append(l.Revoked, readPeerID(&d))
	}
	l.Sig = d.Fixed(ed25519.SignatureSize)
	if err := finish(&d); err != nil {
		return nil, fmt.Errorf("decode revocations: %w", err)
	}
	return l, nil
}

// verify checks the CA signature.
func (l *revocationList) verify(ca ed25519.PublicKey) error {
	if !ed25519.Verify(ca, l.body(), l.Sig) {
		return protocolError("revocation list signature does not verify against the mesh ca")
	}
	return nil
}

// sign sets Sig with the CA key.
func (l *revocationList) sign(caKey ed25519.PrivateKey) {
	l.Sig = ed25519.Sign(caKey, l.body())
}

// has reports whether id is revoked.
func (l *revocationList) has(id PeerID) bool {
	return l != nil && slices.Contains(l.Revoked, id)
}

// loadRevocations reads STATE/mesh/revocations; a missing file is version 0.
func loadRevocations(dir string, ca ed25519.PublicKey) (*revocationList, error) {
	path := filepath.Join(dir, fileRevocations)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &revocationList{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	l, err := decodeRevocations(data)
	if err == nil {
		err = l.verify(ca)
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return l, nil
}

// revocationBlob is our current signed list, or nil at version 0.
func (n *Node) revocationBlob() []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.revs.Version == 0 {
		return nil
	}
	return n.revs.encode()
}

// isRevoked reports whether id is on our list.
func (n *Node) isRevoked(id PeerID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.revs.has(id)
}

// applyRevocations adopts a signed list if it is newer than ours: it is
// stored, forwarded to every connected member, and enforced at once
// (connections to revoked members closed, roster entries dropped,
// PeerRemoved emitted). An older or equal version is ignored (no rollback);
// a bad signature is a protocol error.
func (n *Node) applyRevocations(payload []byte) (bool, error) {
	l, err := decodeRevocations(payload)
	if err != nil {
		return false, err
	}
	n.mu.Lock()
	ca := n.ident.ca
	n.mu.Unlock()
	if err := l.verify(ca.PublicKey.(ed25519.PublicKey)); err != nil {
		return false, err
	}
	n.revMu.Lock()
	removed, ok := n.enforce(l, payload)
	n.revMu.Unlock()
	n.emitRemoved(removed)
	return ok, nil
}

// emitRemoved delivers PeerRemoved events with no lock held.
func (n *Node) emitRemoved(removed []PeerInfo) {
	for _, info := range removed {
		n.log.Info("member removed", "peer", info.ID, "name", info.Name)
		n.emit(PeerRemoved{Peer: info})
	}
}

// enforce adopts a verified list (revMu held) and reports whether it was
// newer, with the members it removed.
func (n *Node) enforce(l *revocationList, payload []byte) ([]PeerInfo, bool) {
	closing, removed, ok := n.adopt(l)
	if !ok {
		return nil, false
	}
	if err := atomicfile.Write(filepath.Join(n.dir, fileRevocations), payload, 0o600); err != nil {
		n.log.Warn("member removals not saved", "err", err,
			"fix", "check free space and permissions of the state folder (--state)")
	}
	n.log.Info("revocation list adopted", "version", l.Version, "revoked", len(l.Revoked))
	for _, p := range closing {
		p.bye(reasonRevoked, nil)
	}
	n.forward(encodeFrame(frameRevocations, payload))
	n.saveRoster()
	return removed, true
}

// adopt installs l if newer and collects what it revokes.
func (n *Node) adopt(l *revocationList) (closing []*peer, removed []PeerInfo, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if l.Version <= n.revs.Version {
		return nil, nil, false
	}
	n.revs = l
	for _, id := range l.Revoked {
		if id == n.self {
			n.log.Error("this node was removed from the mesh by the admin",
				"fix", "ask the mesh admin for a new invite to join again")
			continue
		}
		info, known := PeerInfo{}, false
		if m := n.roster[id]; m != nil {
			info, known = m.info(), true
			delete(n.roster, id)
		}
		if p := n.peers[id]; p != nil {
			info, known = p.info(), true
			closing = append(closing, p)
		}
		delete(n.dials, idKey(id))
		if known {
			removed = append(removed, info)
		}
	}
	if l.has(n.self) {
		closing = slices.Collect(maps.Values(n.peers))
	}
	return closing, removed, true
}

// forward sends a frame to every connected member (best effort: a member
// that misses it gets the list in the next HELLO exchange).
func (n *Node) forward(f []byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		p.trySend(f)
	}
}

// Remove revokes a member everywhere (admin only). nameOrID is a full ID,
// an ID prefix of at least 8 characters, or an exact display name.
func (n *Node) Remove(nameOrID string) (PeerInfo, error) {
	n.mu.Lock()
	admin, caKey := n.ident.admin(), n.ident.caKey
	n.mu.Unlock()
	if !admin {
		return PeerInfo{}, fmt.Errorf("remove %q: %w", nameOrID, ErrNotAdmin)
	}
	info, err := n.resolve(nameOrID)
	if err != nil {
		return PeerInfo{}, fmt.Errorf("remove %q: %w", nameOrID, err)
	}
	n.revMu.Lock()
	n.mu.Lock()
	l := &revocationList{Version: n.revs.Version + 1, IssuedAt: time.Now(),
		Revoked: append(slices.Clone(n.revs.Revoked), info.ID)}
	n.mu.Unlock()
	if len(l.Revoked) > maxRevoked {
		n.revMu.Unlock()
		return PeerInfo{}, fmt.Errorf("remove %q: revocation list is full", nameOrID)
	}
	l.sign(caKey)
	removed, _ := n.enforce(l, l.encode())
	n.revMu.Unlock()
	n.emitRemoved(removed)
	return info, nil
}

// resolve finds one member by full ID, ID prefix (>= 8 characters) or name.
func (n *Node) resolve(s string) (PeerInfo, error) {
	want := strings.ToLower(strings.TrimSpace(s))
	if want == strings.ToLower(n.self.String()) || len(want) >= 8 && strings.HasPrefix(n.self.String(), want) || s == n.Name() {
		return PeerInfo{}, errors.New("cannot remove this node itself")
	}
	var found []PeerInfo
	for _, info := range n.Peers() {
		id := info.ID.String()
		if id == want || len(want) >= 8 && strings.HasPrefix(id, want) || info.Name == s {
			found = append(found, info)
		}
	}
	switch len(found) {
	case 0:
		return PeerInfo{}, ErrUnknownPeer
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = f.Name + " (" + f.ID.Short() + ")"
	}
	return PeerInfo{}, fmt.Errorf("ambiguous: %s; use an id", strings.Join(names, ", "))
}
