package record

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/meshfs/meshfs/internal/wire"
	"github.com/meshfs/meshfs/mesh"
)

// ReceiptSize is the size of a receipt's wire form: version, receiver,
// author, transfer ID and signature.
const ReceiptSize = 1 + 32 + 32 + 16 + 64

// receiptVersion is the wire format EncodeReceipt writes and DecodeReceipt
// reads.
const receiptVersion = 1

// receiptDomain starts the signed bytes of a receipt (see chatDomain).
const receiptDomain = "meshfs receipt v1\x00"

// Receipt says Receiver holds transfer ID of Author verified and in place;
// signed by Receiver.
type Receipt struct {
	Receiver mesh.PeerID
	Author   mesh.PeerID
	ID       [16]byte // the transfer ID, as in the author's File record
	Sig      []byte   // Ed25519 signature by the receiver, 64 bytes, over the signed bytes
}

// signedBytes is what the receiver signs: the domain string, receiver,
// author and transfer ID.
func (r Receipt) signedBytes() []byte {
	var e wire.Encoder
	e.Raw([]byte(receiptDomain))
	e.Raw(r.Receiver[:])
	e.Raw(r.Author[:])
	e.Raw(r.ID[:])
	return e.B
}

// Sign sets r.Sig with the receiver's private key. A key of the wrong size
// leaves Sig empty (ed25519.Sign would panic), which Check then refuses.
func (r *Receipt) Sign(key ed25519.PrivateKey) {
	if len(key) != ed25519.PrivateKeySize {
		r.Sig = nil
		return
	}
	r.Sig = ed25519.Sign(key, r.signedBytes())
}

// SignWith sets r.Sig with a signer holding the receiver's Ed25519 key, as
// mesh.Node.Signer gives it without handing out the key itself.
func (r *Receipt) SignWith(s crypto.Signer) error {
	sig, err := s.Sign(rand.Reader, r.signedBytes(), crypto.Hash(0))
	if err != nil {
		return fmt.Errorf("sign receipt: %w", err)
	}
	r.Sig = sig
	return nil
}

// Check reports whether r is well formed, without any key. The error wraps
// ErrMalformed and says which rule failed.
func (r Receipt) Check() error {
	if err := r.checkFields(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// checkFields is Check without the wrapping.
func (r Receipt) checkFields() error {
	switch {
	case r.Receiver.IsZero():
		return errors.New("zero receiver")
	case r.Author.IsZero():
		return errors.New("zero author")
	case r.Receiver == r.Author:
		return errors.New("receipt by the author itself")
	case len(r.Sig) != ed25519.SignatureSize:
		return fmt.Errorf("signature of %d bytes, want %d", len(r.Sig), ed25519.SignatureSize)
	}
	return nil
}

// Verify checks r and then its signature under pub, which must be the
// receiver's own key: its ID must be r.Receiver. A signature that does not
// verify, or a key of another member, wraps ErrBadSignature.
func (r Receipt) Verify(pub ed25519.PublicKey) error { return verify(r, pub) }

// VerifyWith looks up the receiver's current key in keys and verifies r
// with it. A receiver keys does not know, or has revoked, fails with keys'
// error wrapped.
func (r Receipt) VerifyWith(keys Keys) error { return verifyWith(r, keys) }

func (r Receipt) signer() (mesh.PeerID, string) { return r.Receiver, "receiver" }
func (r Receipt) signature() []byte             { return r.Sig }

// name names the receipt in errors.
func (r Receipt) name() string {
	return fmt.Sprintf("receipt by %s for %x of %s", r.Receiver.Short(), r.ID, r.Author.Short())
}

// EncodeReceipt returns the wire form of r, ReceiptSize bytes when r is
// well formed: version u8, receiver (32 bytes), author (32 bytes), transfer
// ID (16 bytes), signature (64 bytes). It does not check r; DecodeReceipt
// refuses what Check refuses.
func EncodeReceipt(r Receipt) []byte {
	var e wire.Encoder
	e.B = make([]byte, 0, ReceiptSize)
	e.U8(receiptVersion)
	e.Raw(r.Receiver[:])
	e.Raw(r.Author[:])
	e.Raw(r.ID[:])
	e.Raw(r.Sig)
	return e.B
}

// DecodeReceipt parses exactly one wire-form receipt (trailing bytes are an
// error) and runs Check on it. It does not verify the signature.
func DecodeReceipt(b []byte) (Receipt, error) {
	d := wire.Decoder{B: b}
	if v := d.U8(); d.Err() == nil && v != receiptVersion {
		return Receipt{}, fmt.Errorf("decode receipt: %w: receipt format %d, this build reads %d",
			ErrMalformed, v, receiptVersion)
	}
	var r Receipt
	d.Into(r.Receiver[:])
	d.Into(r.Author[:])
	d.Into(r.ID[:])
	r.Sig = d.Fixed(ed25519.SignatureSize)
	if err := d.End(); err != nil {
		return Receipt{}, fmt.Errorf("decode receipt: %w: %w", ErrMalformed, err)
	}
	if err := r.Check(); err != nil {
		return Receipt{}, fmt.Errorf("decode receipt: %w", err)
	}
	return r, nil
}
