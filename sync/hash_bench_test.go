package sync

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"hash/crc32"
	"testing"
)

// BenchmarkBlockHash is how the block hash was chosen: BLAKE3 (blockSum)
// against the standard library's collision-resistant hashes, SHA-256 with
// SHA-NI on this CPU among them, on one 1 MiB block; run it with -cpu 1
// for the cost per core. crc32c is listed for scale only: it is not
// collision resistant, and a peer is never trusted.
func BenchmarkBlockHash(b *testing.B) {
	block := make([]byte, 1<<20)
	rand.Read(block)
	crc := crc32.MakeTable(crc32.Castagnoli)
	for _, c := range []struct {
		name string
		sum  func([]byte)
	}{
		{"blake3", func(p []byte) { blockSum(p) }},
		{"sha256", func(p []byte) { sha256.Sum256(p) }},
		{"sha512_256", func(p []byte) { sha512.Sum512_256(p) }},
		{"sha3_256", func(p []byte) { sha3.Sum256(p) }},
		{"crc32c_not_secure", func(p []byte) { crc32.Checksum(p, crc) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(block)))
			for b.Loop() {
				c.sum(block)
			}
		})
	}
}

// BenchmarkFileHashOf: the file hash over a 4 GiB file's block list.
func BenchmarkFileHashOf(b *testing.B) {
	blocks := make([]hash32, 4096)
	for b.Loop() {
		fileHashOf(4<<30, 1<<20, blocks)
	}
}

// BenchmarkChunkDecode: a CHUNK message must decode without copying.
func BenchmarkChunkDecode(b *testing.B) {
	msg := (&chunkMsg{ID: transferID{1}, Index: 7, Data: make([]byte, 1<<20)}).encode()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := decodeMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}
