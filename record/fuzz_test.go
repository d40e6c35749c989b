package record

import (
	"bytes"
	"testing"
)

// chatSeeds are valid encodings and a few broken ones.
func chatSeeds(t testing.TB) [][]byte {
	alice := newAuthor(t, 1)
	good := EncodeChat(alice.signed(1, "hello"))
	v2 := bytes.Clone(good)
	v2[0] = 2
	private := EncodeChat(alice.private(4, newAuthor(t, 2).id))
	return [][]byte{
		private,
		private[:len(private)-1],
		good,
		EncodeChat(alice.signed(2, "")),
		EncodeChat(alice.signed(3, "héllo ✓")),
		good[:len(good)-1],
		append(bytes.Clone(good), 0),
		v2,
		{},
	}
}

// FuzzDecodeChat: decoding never panics, and whatever decodes passes
// Check and encodes back to the same bytes (one encoding per record).
func FuzzDecodeChat(f *testing.F) {
	for _, s := range chatSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := DecodeChat(in)
		if err != nil {
			return
		}
		if err := c.Check(); err != nil {
			t.Fatalf("decoded record fails Check: %v", err)
		}
		if out := EncodeChat(c); !bytes.Equal(out, in) {
			t.Fatalf("EncodeChat(DecodeChat(%x)) = %x", in, out)
		}
	})
}

// FuzzDecodeVector: decoding never panics, and whatever decodes encodes
// back to the same bytes.
func FuzzDecodeVector(f *testing.F) {
	f.Add(Vector{}.Encode())
	f.Add(Vector{idN(1): 1, idN(2): 1 << 50}.Encode())
	f.Add(rawVector(2, idN(2), uint64(1), idN(1), uint64(2)))
	f.Add(rawVector(1, idN(1), uint64(0)))
	f.Add(rawVector(0xffff))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := DecodeVector(in)
		if err != nil {
			return
		}
		if out := v.Encode(); !bytes.Equal(out, in) {
			t.Fatalf("Encode(DecodeVector(%x)) = %x", in, out)
		}
	})
}
