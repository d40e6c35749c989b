package record

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/meshfs/meshfs/mesh"
)

// receipt returns a receipt by a for transfer id of author, signed by a.
func (a author) receipt(author mesh.PeerID, id byte) Receipt {
	r := Receipt{Receiver: a.id, Author: author, ID: [16]byte{id, 0xee}}
	r.Sign(a.key)
	return r
}

// equalReceipt reports whether r and o have the same fields.
func equalReceipt(r, o Receipt) bool {
	return r.Receiver == o.Receiver && r.Author == o.Author && r.ID == o.ID && bytes.Equal(r.Sig, o.Sig)
}

func TestReceiptRoundTrip(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	r := bob.receipt(alice.id, 1)
	b := EncodeReceipt(r)
	if len(b) != ReceiptSize {
		t.Fatalf("EncodeReceipt: %d bytes, want ReceiptSize %d", len(b), ReceiptSize)
	}
	got, err := DecodeReceipt(b)
	if err != nil {
		t.Fatalf("DecodeReceipt(EncodeReceipt(r)) = %v", err)
	}
	if !equalReceipt(got, r) {
		t.Fatalf("DecodeReceipt(EncodeReceipt(r)) = %+v, want %+v", got, r)
	}
	if err := got.Verify(bob.pub()); err != nil {
		t.Fatalf("Verify after round trip = %v", err)
	}
	if err := got.VerifyWith(newKeyring(alice, bob)); err != nil {
		t.Fatalf("VerifyWith after round trip = %v", err)
	}
}

// TestReceiptLayout pins the signed bytes and the wire form, built here by
// hand rather than with internal/wire, so a change to either shows.
func TestReceiptLayout(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	r := bob.receipt(alice.id, 3)
	var want []byte
	want = append(want, "meshfs receipt v1\x00"...)
	want = append(want, bob.id[:]...)
	want = append(want, alice.id[:]...)
	want = append(want, r.ID[:]...)
	if got := r.signedBytes(); !bytes.Equal(got, want) {
		t.Errorf("signedBytes() = %x, want %x", got, want)
	}
	if !ed25519.Verify(bob.pub(), want, r.Sig) {
		t.Errorf("Sig does not verify over the hand-built signed bytes")
	}
	wire := []byte{1}
	wire = append(wire, bob.id[:]...)
	wire = append(wire, alice.id[:]...)
	wire = append(wire, r.ID[:]...)
	wire = append(wire, r.Sig...)
	if got := EncodeReceipt(r); !bytes.Equal(got, wire) {
		t.Errorf("EncodeReceipt() = %x, want %x", got, wire)
	}
}

func TestReceiptVerify(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	t.Run("wrong key", func(t *testing.T) {
		if err := bob.receipt(alice.id, 1).Verify(alice.pub()); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify(the author's key) = %v, want ErrBadSignature", err)
		}
	})
	t.Run("short public key", func(t *testing.T) {
		if err := bob.receipt(alice.id, 1).Verify(bob.pub()[:31]); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify(31-byte key) = %v, want ErrBadSignature", err)
		}
	})
	t.Run("sign with a short key", func(t *testing.T) {
		r := bob.receipt(alice.id, 1)
		r.Sign(bob.key[:10])
		if r.Sig != nil {
			t.Fatalf("Sign(10-byte key) set Sig %x, want nil", r.Sig)
		}
	})
	t.Run("SignWith", func(t *testing.T) {
		r := Receipt{Receiver: bob.id, Author: alice.id, ID: [16]byte{1}}
		if err := r.SignWith(bob.key); err != nil {
			t.Fatalf("SignWith = %v", err)
		}
		if err := r.Verify(bob.pub()); err != nil {
			t.Fatalf("Verify after SignWith = %v", err)
		}
	})
}

// TestReceiptSignatures: every signed field altered after signing, and
// every borrowed signature, fails, with every member's key known.
func TestReceiptSignatures(t *testing.T) {
	alice, bob, carol := newAuthor(t, 1), newAuthor(t, 2), newAuthor(t, 3)
	keys := newKeyring(alice, bob, carol)
	orig := bob.receipt(alice.id, 1)
	if err := orig.VerifyWith(keys); err != nil {
		t.Fatalf("VerifyWith(original) = %v", err)
	}
	tests := []struct {
		name   string
		change func(r *Receipt)
	}{
		{"receiver", func(r *Receipt) { r.Receiver = carol.id }},
		{"author", func(r *Receipt) { r.Author = carol.id }},
		{"id", func(r *Receipt) { r.ID[15] ^= 1 }},
		{"receiver and author swapped", func(r *Receipt) { r.Receiver, r.Author = r.Author, r.Receiver }},
		{"signature bit", func(r *Receipt) { r.Sig[10] ^= 1 }},
		{"replay: signature of another receipt", func(r *Receipt) { r.Sig = bob.receipt(alice.id, 2).Sig }},
		{"replay: same transfer, another author", func(r *Receipt) { r.Sig = bob.receipt(carol.id, 1).Sig }},
		{"signed by another member", func(r *Receipt) { r.Sign(carol.key) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := orig
			r.Sig = bytes.Clone(orig.Sig)
			tc.change(&r)
			if err := r.VerifyWith(keys); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("VerifyWith(altered) = %v, want ErrBadSignature", err)
			}
		})
	}
}

// TestReceiptDomain: a chat signature by the receiver, over bytes that
// match the receipt's after the domain string, does not verify as the
// receipt.
func TestReceiptDomain(t *testing.T) {
	bob := newAuthor(t, 2)
	// The author's ID is shaped so that it reads as the chat's seq,
	// lamport, time and a text length of 20: its last 4 bytes and the ID.
	var author mesh.PeerID
	be := binary.BigEndian
	be.PutUint64(author[0:], 1)
	be.PutUint64(author[8:], 2)
	be.PutUint64(author[16:], uint64(testTime.UnixNano()))
	be.PutUint32(author[24:], 20)
	copy(author[28:], "text")
	r := Receipt{Receiver: bob.id, Author: author, ID: [16]byte{'a', 'b', 'c'}}
	tail := r.signedBytes()[len(receiptDomain):]
	c := chatOver(t, bob, tail)
	if !ed25519.Verify(bob.pub(), append([]byte(chatDomain), tail...), c.Sig) {
		t.Fatalf("chat signature does not cover the receipt's bytes: the test proves nothing")
	}
	r.Sig = c.Sig
	if err := r.Verify(bob.pub()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Receipt.Verify(chat signature) = %v, want ErrBadSignature", err)
	}
}

func TestReceiptVerifyWithKeysError(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	tests := []struct {
		name string
		keys *keyring
		want error
	}{
		{"revoked receiver", func() *keyring { k := newKeyring(alice, bob); k.revoked[bob.id] = true; return k }(), errRevoked},
		{"unknown receiver", newKeyring(alice), mesh.ErrUnknownPeer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := bob.receipt(alice.id, 1).VerifyWith(tc.keys); !errors.Is(err, tc.want) {
				t.Fatalf("VerifyWith = %v, want %v wrapped", err, tc.want)
			}
		})
	}
}

func TestReceiptCheck(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	tests := []struct {
		name   string
		change func(r *Receipt)
	}{
		{"zero receiver", func(r *Receipt) { r.Receiver = mesh.PeerID{} }},
		{"zero author", func(r *Receipt) { r.Author = mesh.PeerID{} }},
		{"receipt by the author", func(r *Receipt) { r.Author = r.Receiver }},
		{"signature 63 bytes", func(r *Receipt) { r.Sig = r.Sig[:63] }},
		{"signature 65 bytes", func(r *Receipt) { r.Sig = append(r.Sig, 0) }},
		{"no signature", func(r *Receipt) { r.Sig = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bob.receipt(alice.id, 1)
			tc.change(&r)
			if len(r.Sig) == ed25519.SignatureSize {
				r.Sign(bob.key) // a real receiver signed it: only Check stands in the way
			}
			if err := r.Check(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Check() = %v, want ErrMalformed", err)
			}
			if err := r.Verify(bob.pub()); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Verify() = %v, want ErrMalformed", err)
			}
			if _, err := DecodeReceipt(EncodeReceipt(r)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeReceipt(EncodeReceipt(r)) = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDecodeReceiptRefuses(t *testing.T) {
	b := EncodeReceipt(newAuthor(t, 2).receipt(newAuthor(t, 1).id, 1))
	for i := range len(b) {
		if _, err := DecodeReceipt(b[:i]); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeReceipt(first %d of %d bytes) = %v, want ErrMalformed", i, len(b), err)
		}
	}
	if _, err := DecodeReceipt(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeReceipt(trailing byte) = %v, want ErrMalformed", err)
	}
	v2 := bytes.Clone(b)
	v2[0] = 2
	_, err := DecodeReceipt(v2)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "receipt format 2, this build reads 1") {
		t.Errorf("DecodeReceipt(version 2) = %v, want one naming format 2", err)
	}
}

// FuzzDecodeReceipt: decoding never panics, and whatever decodes passes
// Check and encodes back to the same bytes (one encoding per receipt).
func FuzzDecodeReceipt(f *testing.F) {
	alice, bob := newAuthor(f, 1), newAuthor(f, 2)
	good := EncodeReceipt(bob.receipt(alice.id, 1))
	v2 := bytes.Clone(good)
	v2[0] = 2
	self := EncodeReceipt(bob.receipt(bob.id, 1))
	for _, s := range [][]byte{good, EncodeReceipt(alice.receipt(bob.id, 9)), good[:len(good)-1],
		append(bytes.Clone(good), 0), v2, self, {1}, {}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := DecodeReceipt(in)
		if err != nil {
			return
		}
		if err := r.Check(); err != nil {
			t.Fatalf("decoded receipt fails Check: %v", err)
		}
		if out := EncodeReceipt(r); !bytes.Equal(out, in) {
			t.Fatalf("EncodeReceipt(DecodeReceipt(%x)) = %x", in, out)
		}
	})
}
