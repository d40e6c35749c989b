package sync

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"

	"github.com/meshfs/meshfs/internal/wire"
	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
	"github.com/meshfs/meshfs/seal"
)

// A private file travels as a box: an age file (package seal) sealed to
// its recipient and its author, holding a header and then the file's
// bytes. The box is what the manifest describes and what every member
// checks, stores and passes on, block by block, like any file; only the
// recipient opens it, and finds the name, mode and mtime inside. The
// header repeats the author, the recipient and the transfer ID, so a box
// cannot be passed off in another record: the opener checks them against
// the record its author signed.

// boxDomain starts a private file's box header.
const boxDomain = "meshfs private file v1\x00"

// maxBoxHeader bounds the header an opener reads: the domain, three IDs,
// a path of record.MaxPath bytes and the figures.
const maxBoxHeader = len(boxDomain) + 32 + 32 + 16 + 2 + record.MaxPath + 4 + 8 + 8

// errBox: a box that cannot be opened here, or holds a header that does not
// belong to its record.
var errBox = errors.New("private file cannot be opened")

// boxHeader is what a box says about the file inside.
type boxHeader struct {
	Author, To mesh.PeerID
	ID         transferID
	Path       string // relative, '/'-separated: validated by the recipient like any path
	Mode       uint32 // permission bits
	MTime      int64  // unix nanoseconds
	Size       uint64 // bytes of file after the header
}

// encode is the header's bytes: a u16 length, then its fields.
func (h boxHeader) encode() []byte {
	var e wire.Encoder
	e.Raw([]byte(boxDomain))
	e.Raw(h.Author[:])
	e.Raw(h.To[:])
	e.Raw(h.ID[:])
	e.Str(h.Path)
	e.U32(h.Mode)
	e.U64(uint64(h.MTime))
	e.U64(h.Size)
	var out wire.Encoder
	out.U16(uint16(len(e.B)))
	out.Raw(e.B)
	return out.B
}

// sealBox writes to dst a box of the h.Size bytes of src, sealed to the
// recipient's key and the author's.
func sealBox(dst io.Writer, h boxHeader, src io.Reader, author, to ed25519.PublicKey) error {
	w, err := seal.Seal(dst, to, author)
	if err != nil {
		return err
	}
	if _, err := w.Write(h.encode()); err != nil {
		return fmt.Errorf("seal file: %w", err)
	}
	n, err := io.Copy(w, io.LimitReader(src, int64(h.Size)))
	if err != nil {
		return fmt.Errorf("seal file: %w", err)
	}
	if uint64(n) != h.Size {
		return fmt.Errorf("seal file: %d of %d bytes: %w", n, h.Size, errChanged)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("seal file: %w", err)
	}
	return nil
}

// openBox opens the box in src with this member's key and checks that its
// header belongs to the record (author, recipient, transfer ID). The
// returned reader gives the file's bytes; it fails at the first damaged
// chunk, and only io.EOF after exactly Size bytes means the file is whole
// (copyBox checks both).
func openBox(src io.Reader, key ed25519.PrivateKey, want boxHeader) (boxHeader, io.Reader, error) {
	r, err := seal.Open(src, key)
	if err != nil {
		return boxHeader{}, nil, fmt.Errorf("%w: %w", errBox, err)
	}
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return boxHeader{}, nil, fmt.Errorf("%w: header: %w", errBox, err)
	}
	size := int(n[0])<<8 | int(n[1])
	if size > maxBoxHeader {
		return boxHeader{}, nil, fmt.Errorf("%w: header of %d bytes", errBox, size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return boxHeader{}, nil, fmt.Errorf("%w: header: %w", errBox, err)
	}
	h, err := decodeBoxHeader(b)
	if err != nil {
		return boxHeader{}, nil, err
	}
	if h.Author != want.Author || h.To != want.To || h.ID != want.ID {
		return boxHeader{}, nil, fmt.Errorf("%w: sealed as transfer %s of %s to %s, not this record",
			errBox, h.ID, h.Author.Short(), h.To.Short())
	}
	return h, r, nil
}

// decodeBoxHeader parses a header's fields.
func decodeBoxHeader(b []byte) (boxHeader, error) {
	d := wire.Decoder{B: b}
	var h boxHeader
	domain := string(d.Take(len(boxDomain)))
	d.Into(h.Author[:])
	d.Into(h.To[:])
	d.Into(h.ID[:])
	h.Path = d.Str(record.MaxPath)
	h.Mode = d.U32()
	h.MTime = int64(d.U64())
	h.Size = d.U64()
	if err := d.End(); err != nil || domain != boxDomain || h.Path == "" || h.Mode&^0o777 != 0 {
		return boxHeader{}, fmt.Errorf("%w: header malformed", errBox)
	}
	return h, nil
}

// copyBox copies the file out of an opened box to dst: exactly h.Size
// bytes, then the end of the box. A box cut short or damaged fails.
func copyBox(dst io.Writer, h boxHeader, r io.Reader) error {
	n, err := io.Copy(dst, io.LimitReader(r, int64(h.Size)))
	if err != nil {
		return fmt.Errorf("%w: %w", errBox, err)
	}
	if uint64(n) != h.Size {
		return fmt.Errorf("%w: %d of %d bytes", errBox, n, h.Size)
	}
	var one [1]byte
	switch _, err := io.ReadFull(r, one[:]); err {
	case io.EOF:
		return nil
	case nil:
		return fmt.Errorf("%w: bytes after the file", errBox)
	default:
		return fmt.Errorf("%w: %w", errBox, err)
	}
}
