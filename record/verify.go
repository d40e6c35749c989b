package record

import (
	"crypto/ed25519"
	"fmt"

	"github.com/meshfs/meshfs/mesh"
)

// signed is what every kind of record has for its signature check.
type signed interface {
	Check() error
	signer() (id mesh.PeerID, role string) // whose key signs it, and what that member is to it
	signedBytes() []byte
	signature() []byte
	name() string
}

// verify checks r and then its signature under pub, which must be the
// signer's own key: a key whose ID is not the signer's wraps
// ErrBadSignature, as does a signature that does not verify.
func verify(r signed, pub ed25519.PublicKey) error {
	if err := r.Check(); err != nil {
		return fmt.Errorf("verify %s: %w", r.name(), err)
	}
	if len(pub) != ed25519.PublicKeySize { // ed25519.Verify would panic
		return fmt.Errorf("verify %s: public key of %d bytes: %w", r.name(), len(pub), ErrBadSignature)
	}
	who, role := r.signer()
	if id, err := idOf(pub); err != nil || id != who {
		return fmt.Errorf("verify %s: key is not the %s's: %w", r.name(), role, ErrBadSignature)
	}
	if !ed25519.Verify(pub, r.signedBytes(), r.signature()) {
		return fmt.Errorf("verify %s: %w", r.name(), ErrBadSignature)
	}
	return nil
}

// verifyWith looks up the signer's current key in keys and verifies r
// with it; a signer keys does not know, or has revoked, fails with keys'
// error wrapped.
func verifyWith(r signed, keys Keys) error {
	if err := r.Check(); err != nil {
		return fmt.Errorf("verify %s: %w", r.name(), err)
	}
	who, role := r.signer()
	pub, err := keys.MemberKey(who)
	if err != nil {
		return fmt.Errorf("verify %s: %s key: %w", r.name(), role, err)
	}
	return verify(r, pub)
}
