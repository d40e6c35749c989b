package record_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"fmt"
	"log"
	"time"

	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// ExampleChat_Sign signs a chat line, sends it as bytes, and checks it at
// the other end with the author's public key.
func ExampleChat_Sign() {
	// A member's key and ID, as mesh makes them (a fixed seed here).
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		log.Fatal(err)
	}
	alice := mesh.PeerIDFromKey(spki)

	// The author signs its first line.
	c := record.Chat{Author: alice, Seq: 1, Lamport: 1, Time: time.Unix(1_800_000_000, 0), Text: "hello"}
	c.Sign(key)
	b := record.EncodeChat(c)

	// Any member, even one that got b second-hand, decodes and verifies.
	got, err := record.DecodeChat(b)
	if err != nil {
		log.Fatal(err)
	}
	if err := got.Verify(pub); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("record %d: %q (%d bytes on the wire)\n", got.Seq, got.Text, len(b))

	// A changed line no longer verifies.
	got.Text = "goodbye"
	fmt.Println(got.Verify(pub) != nil)
	// Output:
	// record 1: "hello" (128 bytes on the wire)
	// true
}
