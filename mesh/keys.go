package mesh

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
)

// Member keys let a program above the mesh check what a member signed even
// when the bytes came through another member: a record is only as good as
// the key that verifies it, and that key is the one the mesh CA certified
// for the member's ID.

var (
	// ErrUnknownMember: no certificate for this ID has reached this node.
	ErrUnknownMember = errors.New("not a known member")
	// ErrRevoked: the admin removed this member.
	ErrRevoked = errors.New("member was removed")
)

// Signer signs with this node's member key, whose public half every member
// can look up with MemberKey. Callers sign only bytes that begin with a
// domain string of their own, so that a signature for one purpose is never
// valid for another (TLS 1.3 prefixes what it signs in the same way).
func (n *Node) Signer() crypto.Signer { return n.ident.key }

// SealKey returns this node's member private key, for opening what members
// sealed to its certified key (package seal turns the Ed25519 key into the
// X25519 one age uses). Callers never sign with it (Signer, with a domain
// string, is for that) and never let it leave the process.
func (n *Node) SealKey() ed25519.PrivateKey { return n.ident.key }

// MemberKey returns the Ed25519 key the mesh CA certified for id: this
// node's own, or a member's from the certificate that proved it (the
// roster keeps only certificates that verified). It fails for a member
// never seen (ErrUnknownMember) and for a removed one (ErrRevoked).
func (n *Node) MemberKey(id PeerID) (ed25519.PublicKey, error) {
	if id == n.self {
		return n.ident.key.Public().(ed25519.PublicKey), nil
	}
	n.mu.Lock()
	revoked := n.revs.has(id)
	m := n.roster[id]
	var der []byte
	if m != nil {
		der = m.Cert
		if !revoked && m.key != nil && bytes.Equal(m.keyCert, der) {
			n.mu.Unlock()
			return m.key, nil
		}
	}
	n.mu.Unlock()
	switch {
	case revoked:
		return nil, fmt.Errorf("member %s: %w", id.Short(), ErrRevoked)
	case der == nil:
		return nil, fmt.Errorf("member %s: %w", id.Short(), ErrUnknownMember)
	}
	key, err := keyOf(id, der)
	if err == nil {
		n.mu.Lock()
		if m.Cert != nil && bytes.Equal(m.Cert, der) {
			m.key, m.keyCert = key, der
		}
		n.mu.Unlock()
	}
	return key, err
}

// keyOf parses a roster certificate and checks it names id.
func keyOf(id PeerID, der []byte) (ed25519.PublicKey, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("member %s: certificate: %w", id.Short(), err)
	}
	pub, ok := c.PublicKey.(ed25519.PublicKey)
	if !ok || peerIDOf(c) != id {
		return nil, fmt.Errorf("member %s: certificate is not its Ed25519 key", id.Short())
	}
	return pub, nil
}
