package seal_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log"

	"github.com/meshfs/meshfs/seal"
)

// ExampleSealBytes seals a line to bob and to its sender, alice, so both
// can read it; carol, a third member relaying it, cannot.
func ExampleSealBytes() {
	// Members' keys, as mesh makes them (fixed seeds here). A sender
	// gets the recipients' public keys from mesh.Node.MemberKey.
	alice := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	bob := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	carol := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))

	msg := []byte("the spare key is under the mat")
	box, err := seal.SealBytes(msg, bob.Public().(ed25519.PublicKey), alice.Public().(ed25519.PublicKey))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("plaintext visible:", bytes.Contains(box, msg))

	got, err := seal.OpenBytes(box, bob, 4096)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob reads: %s\n", got)

	_, err = seal.OpenBytes(box, carol, 4096)
	fmt.Println("carol:", errors.Is(err, seal.ErrNotRecipient))
	// Output:
	// plaintext visible: false
	// bob reads: the spare key is under the mat
	// carol: true
}
