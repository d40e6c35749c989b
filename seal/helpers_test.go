package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
)

// member returns a key made from a seed, so failures repeat.
func member(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func pubOf(priv ed25519.PrivateKey) ed25519.PublicKey {
	return priv.Public().(ed25519.PublicKey)
}

// randomBytes returns n random bytes.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// sealed returns msg sealed to the given members' keys, failing t if it cannot.
func sealed(t testing.TB, msg []byte, to ...ed25519.PrivateKey) []byte {
	t.Helper()
	pubs := make([]ed25519.PublicKey, len(to))
	for i, m := range to {
		pubs[i] = pubOf(m)
	}
	box, err := SealBytes(msg, pubs...)
	if err != nil {
		t.Fatalf("SealBytes(%d bytes) = %v", len(msg), err)
	}
	return box
}
