package record

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/meshfs/meshfs/mesh"
)

// private returns alice's private line seq to bob, signed by alice. The
// sealed body is opaque to this package: any bytes do.
func (a author) private(seq uint64, to mesh.PeerID) Chat {
	c := a.signed(seq, "")
	c.To, c.Sealed = to, []byte("age-encryption.org/v1 stand-in body")
	c.Sign(a.key)
	return c
}

func TestPrivateRoundTrip(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	c := alice.private(4, bob.id)
	b := EncodeChat(c)
	if b[0] != privateVersion {
		t.Fatalf("EncodeChat(private) starts with format %d, want %d", b[0], privateVersion)
	}
	got, err := DecodeChat(b)
	if err != nil {
		t.Fatalf("DecodeChat(EncodeChat(private)) = %v", err)
	}
	if !got.Equal(c) || !got.Private() {
		t.Fatalf("round trip = %+v, want %+v", got, c)
	}
	if err := got.VerifyWith(newKeyring(alice, bob)); err != nil {
		t.Fatalf("VerifyWith after round trip = %v", err)
	}
	if room := alice.signed(4, "hi"); EncodeChat(room)[0] != chatVersion {
		t.Fatal("a room line no longer encodes in the first format")
	}
}

// TestPrivateSignatures: nobody can redirect a private line, swap its body,
// or pass a room line's signature off as a private one's.
func TestPrivateSignatures(t *testing.T) {
	alice, bob, carol := newAuthor(t, 1), newAuthor(t, 2), newAuthor(t, 3)
	keys := newKeyring(alice, bob, carol)
	orig := alice.private(5, bob.id)
	tests := []struct {
		name   string
		change func(c *Chat)
	}{
		{"recipient changed", func(c *Chat) { c.To = carol.id }},
		{"body changed", func(c *Chat) { c.Sealed[0] ^= 1 }},
		{"body of another line", func(c *Chat) { c.Sealed = []byte("another body") }},
		{"made a room line with the same signature", func(c *Chat) { c.To, c.Sealed, c.Text = mesh.PeerID{}, nil, "hi" }},
		{"claimed by another author", func(c *Chat) { c.Author = carol.id }},
	}
	if err := orig.VerifyWith(keys); err != nil {
		t.Fatalf("VerifyWith(original) = %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := orig
			c.Sig, c.Sealed = bytes.Clone(orig.Sig), bytes.Clone(orig.Sealed)
			tc.change(&c)
			if err := c.VerifyWith(keys); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("VerifyWith(altered) = %v, want ErrBadSignature", err)
			}
		})
	}
	room := alice.signed(5, "")
	room.To, room.Sealed = bob.id, orig.Sealed
	room.Sig = alice.signed(5, "").Sig // a skip's signature
	if err := room.VerifyWith(keys); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a skip's signature on a private line: VerifyWith = %v, want ErrBadSignature", err)
	}
}

func TestPrivateCheck(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	tests := []struct {
		name   string
		change func(c *Chat)
	}{
		{"to its own author", func(c *Chat) { c.To = alice.id }},
		{"no sealed body", func(c *Chat) { c.Sealed = nil }},
		{"sealed body over MaxSealed", func(c *Chat) { c.Sealed = bytes.Repeat([]byte{1}, MaxSealed+1) }},
		{"text in the clear", func(c *Chat) { c.Text = "secret" }},
		{"sealed body without a recipient", func(c *Chat) { c.To = mesh.PeerID{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := alice.private(1, bob.id)
			tc.change(&c)
			c.Sign(alice.key) // a real author signed it: only Check stands in the way
			if err := c.Check(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Check() = %v, want ErrMalformed", err)
			}
			if _, err := DecodeChat(EncodeChat(c)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeChat(EncodeChat(c)) = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDecodePrivateRefuses(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	b := EncodeChat(alice.private(7, bob.id))
	for i := range len(b) {
		if _, err := DecodeChat(b[:i]); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeChat(first %d of %d bytes) = %v, want ErrMalformed", i, len(b), err)
		}
	}
	// Format 2 with a zero recipient: the recipient starts after the
	// 1+32+8+8+8 header bytes and the empty text's u16 length.
	zero := bytes.Clone(b)
	copy(zero[1+32+24+2:], make([]byte, 32))
	if _, err := DecodeChat(zero); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "recipient") {
		t.Errorf("DecodeChat(format 2, zero recipient) = %v, want ErrMalformed naming the recipient", err)
	}
}
