package seal

import (
	"crypto/ed25519"
	"crypto/sha512"
	"fmt"

	"filippo.io/age"
	"filippo.io/edwards25519"
)

// Recipient returns the age X25519 recipient of the member whose certified
// Ed25519 key is pub: the same point in Montgomery form. It refuses, with
// ErrBadKey, a key that is not a point, a point of small order (any shared
// secret with it is known to all) and one outside the prime-order subgroup
// (no Ed25519 private key has it, so its boxes could never be opened).
func Recipient(pub ed25519.PublicKey) (age.Recipient, error) {
	u, err := montgomery(pub)
	if err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	r, err := age.ParseX25519Recipient(encodeBech32("age", u))
	if err != nil {
		return nil, fmt.Errorf("recipient: %w", err)
	}
	return r, nil
}

// Identity returns the age X25519 identity of the member holding priv: the
// scalar Ed25519 itself signs with, so that it opens what was sealed to
// Recipient(priv.Public()).
func Identity(priv ed25519.PrivateKey) (age.Identity, error) {
	if len(priv) != ed25519.PrivateKeySize { // Seed would panic
		return nil, fmt.Errorf("identity: private key of %d bytes: %w", len(priv), ErrBadKey)
	}
	id, err := age.ParseX25519Identity(encodeBech32("AGE-SECRET-KEY-", scalar(priv)))
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return id, nil
}

// montgomery maps an Ed25519 public key to its X25519 form, u = (1+y)/(1-y).
func montgomery(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key of %d bytes: %w", len(pub), ErrBadKey)
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, fmt.Errorf("public key is not a curve point: %w", ErrBadKey)
	}
	identity := edwards25519.NewIdentityPoint()
	if new(edwards25519.Point).MultByCofactor(p).Equal(identity) == 1 {
		return nil, fmt.Errorf("public key of small order: %w", ErrBadKey)
	}
	// (L-1)·p + p = L·p is the identity only in the prime-order subgroup;
	// Scalar holds L-1 but not L.
	minusOne := edwards25519.NewScalar().Subtract(edwards25519.NewScalar(), scalarOne())
	lp := new(edwards25519.Point).ScalarMult(minusOne, p)
	if lp.Add(lp, p).Equal(identity) != 1 {
		return nil, fmt.Errorf("public key outside the prime-order subgroup: %w", ErrBadKey)
	}
	return p.BytesMontgomery(), nil
}

// scalarOne returns the scalar 1.
func scalarOne() *edwards25519.Scalar {
	one := [32]byte{1}
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(one[:]) // 1 < L: never fails
	return s
}

// scalar returns the X25519 private scalar of priv as libsodium's
// crypto_sign_ed25519_sk_to_curve25519 computes it: the first half of
// SHA-512(seed), clamped. Ed25519 makes its public key from the same
// clamped half (A = s·B), so s times the X25519 base point is the
// Montgomery form of A, which montgomery returns.
func scalar(priv ed25519.PrivateKey) []byte {
	h := sha512.Sum512(priv.Seed())
	s := h[:32]
	s[0] &= 248
	s[31] &= 127
	s[31] |= 64
	return s
}
