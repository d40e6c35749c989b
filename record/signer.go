package record

import (
	"crypto"
	"crypto/rand"
	"fmt"
)

// SignWith sets c.Sig with a signer holding the author's Ed25519 key, as
// mesh.Node.Signer gives it without handing out the key itself.
func (c *Chat) SignWith(s crypto.Signer) error {
	sig, err := s.Sign(rand.Reader, c.signedBytes(), crypto.Hash(0))
	if err != nil {
		return fmt.Errorf("sign chat record: %w", err)
	}
	c.Sig = sig
	return nil
}
