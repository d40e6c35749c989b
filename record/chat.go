package record

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/meshfs/meshfs/internal/safetext"
	"github.com/meshfs/meshfs/internal/wire"
	"github.com/meshfs/meshfs/mesh"
)

// MaxText is the longest chat text a record may carry (the same 4 KiB limit
// the chat store has).
const MaxText = 4 << 10

// MaxSealed is the longest sealed body a private chat record may carry: a
// MaxText line, its framing, and age's header for two recipients fit with
// room to spare.
const MaxSealed = 8 << 10

// The wire formats EncodeChat writes and DecodeChat reads: a room line
// keeps the first format, so a room record encodes as it always did; a
// private line adds its recipient and sealed body.
const (
	chatVersion    = 1
	privateVersion = 2
)

// chatDomain starts the signed bytes, so that a signature over a chat record
// is never valid for another kind of record or for the TLS handshake, which
// sign with the same member key.
const chatDomain = "meshfs chat record v1\x00"

// privateDomain starts the signed bytes of a private line, so that no
// signature over a room line is ever valid for a private one or back.
const privateDomain = "meshfs private chat record v1\x00"

var (
	// ErrMalformed is wrapped by every error Check and the decoders return.
	ErrMalformed = errors.New("malformed record")
	// ErrBadSignature is wrapped when a record's signature does not verify
	// under its author's key.
	ErrBadSignature = errors.New("record signature does not verify")
)

// Chat is one chat line of one author, as signed by that author: a line to
// the room, or a private line to one member (To set). A private line's
// text travels only inside Sealed, encrypted to the recipient and the
// author (package seal); every member stores and passes on the record, so
// that the author's numbers stay without gaps everywhere, but only those
// two can read it.
type Chat struct {
	Author  mesh.PeerID
	Seq     uint64      // 1, 2, 3, ... per author with no gaps; the vector counts these
	Lamport uint64      // author's Lamport clock when it wrote the line: above every Lamport it had seen; >= 1
	Time    time.Time   // author's wall clock; never zero (encoded as unix nanoseconds, int64)
	Text    string      // the line; "" marks a skip (a number the author reserved and never used) or a private line
	To      mesh.PeerID // a private line's recipient; zero for the room
	Sealed  []byte      // a private line's sealed body (1..MaxSealed bytes); empty for the room
	Sig     []byte      // Ed25519 signature, 64 bytes, over the signed bytes
}

// Private reports whether c is a private line.
func (c Chat) Private() bool { return !c.To.IsZero() }

// Keys gives a member's current public key: an error when the ID is not a
// current member (unknown, or revoked). mesh.Node will implement it.
type Keys interface {
	MemberKey(id mesh.PeerID) (ed25519.PublicKey, error)
}

// signedBytes is what the author signs: the domain string, author, seq,
// lamport, time (unix nanos) and the text with a u32 length; a private
// line has its own domain and the recipient and sealed body (u32 length)
// in place of the text.
func (c Chat) signedBytes() []byte {
	var e wire.Encoder
	if c.Private() {
		e.Raw([]byte(privateDomain))
	} else {
		e.Raw([]byte(chatDomain))
	}
	e.Raw(c.Author[:])
	e.U64(c.Seq)
	e.U64(c.Lamport)
	e.U64(uint64(unixNanos(c.Time)))
	if c.Private() {
		e.Raw(c.To[:])
		e.Blob(c.Sealed)
	} else {
		e.Blob([]byte(c.Text))
	}
	return e.B
}

// Sign sets c.Sig with the author's private key. A key of the wrong size
// leaves Sig empty (ed25519.Sign would panic), which Check then refuses.
func (c *Chat) Sign(key ed25519.PrivateKey) {
	if len(key) != ed25519.PrivateKeySize {
		c.Sig = nil
		return
	}
	c.Sig = ed25519.Sign(key, c.signedBytes())
}

// Check reports whether c is well formed, without any key: everything an
// honest author's record satisfies. The error wraps ErrMalformed and says
// which rule failed.
func (c Chat) Check() error {
	if err := c.checkFields(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// checkFields is Check without the wrapping.
func (c Chat) checkFields() error {
	switch {
	case c.Author.IsZero():
		return errors.New("zero author")
	case c.Seq == 0:
		return errors.New("seq 0")
	case c.Lamport == 0:
		return errors.New("lamport 0")
	case len(c.Sig) != ed25519.SignatureSize:
		return fmt.Errorf("signature of %d bytes, want %d", len(c.Sig), ed25519.SignatureSize)
	}
	if err := checkTime(c.Time); err != nil {
		return err
	}
	if c.Private() || len(c.Sealed) > 0 {
		return c.checkPrivate()
	}
	return checkText(c.Text)
}

// checkPrivate checks what a private line adds: a recipient other than its
// author, a sealed body within MaxSealed, and no text in the clear.
func (c Chat) checkPrivate() error {
	switch {
	case c.To.IsZero():
		return errors.New("sealed body without a recipient")
	case c.To == c.Author:
		return errors.New("private line to its own author")
	case len(c.Sealed) == 0:
		return errors.New("private line without a sealed body")
	case len(c.Sealed) > MaxSealed:
		return fmt.Errorf("sealed body of %d bytes over %d", len(c.Sealed), MaxSealed)
	case c.Text != "":
		return errors.New("private line with text in the clear")
	}
	return nil
}

// unixNanos is t as int64 unix nanoseconds, or 0 (the zero time on the
// wire) when t is zero or out of that range, so that such a record never
// encodes as a valid one with some other time.
func unixNanos(t time.Time) int64 {
	if t.IsZero() || !time.Unix(0, t.UnixNano()).Equal(t) {
		return 0
	}
	return t.UnixNano()
}

// checkTime refuses the zero time and times that int64 unix nanoseconds
// cannot hold: those would be signed and sent as a different time. A
// nanosecond count of 0 is the zero time on the wire (as in mesh's chat).
func checkTime(t time.Time) error {
	if t.IsZero() || t.UnixNano() == 0 {
		return errors.New("zero time")
	}
	if !time.Unix(0, t.UnixNano()).Equal(t) {
		return fmt.Errorf("time %v out of range", t.UTC())
	}
	return nil
}

// checkText refuses text an honest author would not sign: over MaxText,
// invalid UTF-8, or changed by safetext.Text (authors sign the sanitised
// line, so anything else was crafted to reach a terminal).
func checkText(s string) error {
	switch {
	case len(s) > MaxText:
		return fmt.Errorf("text of %d bytes over %d", len(s), MaxText)
	case !utf8.ValidString(s):
		return errors.New("text is not valid utf-8")
	case safetext.Text(s) != s:
		return errors.New("text has control characters or escape sequences")
	}
	return nil
}

// Verify checks c and then its signature under pub, which must be the
// author's own key: its ID must be c.Author. A signature that does not
// verify, or a key of another member, wraps ErrBadSignature.
func (c Chat) Verify(pub ed25519.PublicKey) error { return verify(c, pub) }

// VerifyWith looks up the author's current key in keys and verifies c with
// it. An author keys does not know, or has revoked, fails with keys' error
// wrapped.
func (c Chat) VerifyWith(keys Keys) error { return verifyWith(c, keys) }

func (c Chat) signer() (mesh.PeerID, string) { return c.Author, "author" }
func (c Chat) signature() []byte             { return c.Sig }

// idOf is the member ID of pub, computed as mesh computes it from a
// certificate: the SHA-256 of the key's SubjectPublicKeyInfo.
func idOf(pub ed25519.PublicKey) (mesh.PeerID, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return mesh.PeerID{}, fmt.Errorf("encode public key: %w", err)
	}
	return mesh.PeerIDFromKey(spki), nil
}

// name names the record in errors.
func (c Chat) name() string {
	return fmt.Sprintf("chat record %d of %s", c.Seq, c.Author.Short())
}

// Equal reports whether c and o have the same fields: Time by Time.Equal
// (location and monotonic reading do not count), Sig by its bytes.
func (c Chat) Equal(o Chat) bool {
	return c.Author == o.Author && c.Seq == o.Seq && c.Lamport == o.Lamport &&
		c.Time.Equal(o.Time) && c.Text == o.Text && c.To == o.To &&
		bytes.Equal(c.Sealed, o.Sealed) && bytes.Equal(c.Sig, o.Sig)
}

// EncodeChat returns the wire form of c: version u8 (1 for the room, 2 for
// a private line), author (32 bytes), seq u64, lamport u64, time u64 (unix
// nanos), text (u16 length), then for a private line the recipient (32
// bytes) and the sealed body (u32 length), and the signature (64 bytes).
// It does not check c; DecodeChat refuses what Check refuses.
func EncodeChat(c Chat) []byte {
	var e wire.Encoder
	private := c.Private() || len(c.Sealed) > 0
	if private {
		e.U8(privateVersion)
	} else {
		e.U8(chatVersion)
	}
	e.Raw(c.Author[:])
	e.U64(c.Seq)
	e.U64(c.Lamport)
	e.U64(uint64(unixNanos(c.Time)))
	e.Str(c.Text)
	if private {
		e.Raw(c.To[:])
		e.Blob(c.Sealed)
	}
	e.Raw(c.Sig)
	return e.B
}

// DecodeChat parses exactly one wire-form record (trailing bytes are an
// error) and runs Check on it. It does not verify the signature.
func DecodeChat(b []byte) (Chat, error) {
	d := wire.Decoder{B: b}
	v := d.U8()
	if d.Err() == nil && v != chatVersion && v != privateVersion {
		return Chat{}, fmt.Errorf("decode chat record: %w: record format %d, this build reads %d and %d",
			ErrMalformed, v, chatVersion, privateVersion)
	}
	var c Chat
	d.Into(c.Author[:])
	c.Seq = d.U64()
	c.Lamport = d.U64()
	c.Time = time.Unix(0, int64(d.U64()))
	c.Text = d.Str(MaxText)
	if v == privateVersion {
		d.Into(c.To[:])
		c.Sealed = d.Blob(MaxSealed)
		if d.Err() == nil && c.To.IsZero() {
			return Chat{}, fmt.Errorf("decode chat record: %w: private format without a recipient", ErrMalformed)
		}
	}
	c.Sig = d.Fixed(ed25519.SignatureSize)
	if err := d.End(); err != nil {
		return Chat{}, fmt.Errorf("decode chat record: %w: %w", ErrMalformed, err)
	}
	if err := c.Check(); err != nil {
		return Chat{}, fmt.Errorf("decode chat record: %w", err)
	}
	return c, nil
}
