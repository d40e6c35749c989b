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

// ExampleFile_Sign signs the manifest of a shared file and checks it at a
// member that got it from someone other than the author.
func ExampleFile_Sign() {
	// A member's key and ID, as mesh makes them (a fixed seed here).
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := key.Public().(ed25519.PublicKey)
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		log.Fatal(err)
	}
	alice := mesh.PeerIDFromKey(spki)

	// The author signs the manifest; sync computes FileHash from the blocks.
	f := record.File{
		Author: alice, ID: [16]byte{1}, Path: "photos/cat.jpg",
		Size: 300_000, BlockSize: 128 << 10, Mode: 0o644,
		MTime: time.Unix(1_800_000_000, 0).UnixNano(), FileHash: [32]byte{0x5e},
	}
	f.Sign(key)

	// Any member checks it with the author's public key.
	if err := f.Verify(pub); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, %d bytes, by the author\n", f.Path, f.Size)

	// A manifest passed on with another file hash no longer verifies.
	f.FileHash[0] ^= 1
	fmt.Println(f.Verify(pub) != nil)
	// Output:
	// photos/cat.jpg, 300000 bytes, by the author
	// true
}
