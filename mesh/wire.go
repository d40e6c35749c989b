package mesh

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// errShort and errTrailing are the decoder's failures; both wrap ErrProtocol.
var (
	errShort    = fmt.Errorf("%w: truncated payload", ErrProtocol)
	errTrailing = fmt.Errorf("%w: trailing bytes in payload", ErrProtocol)
)

// encoder appends fixed binary layouts: big-endian integers, strings with a
// u16 length prefix and byte blobs with a u32 length prefix.
type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }
func (e *encoder) raw(p []byte) { e.b = append(e.b, p...) }

// str writes a string; callers keep it under 64 KiB (names and addresses).
func (e *encoder) str(s string) {
	e.u16(uint16(len(s)))
	e.b = append(e.b, s...)
}

// blob writes a byte slice with a u32 length.
func (e *encoder) blob(p []byte) {
	e.u32(uint32(len(p)))
	e.b = append(e.b, p...)
}

// decoder reads what encoder writes. Every read is bounds-checked; the first
// failure sticks in err and later reads return zero values, so decoding code
// reads straight through and checks err once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errShort
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u8() uint8 {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if p := d.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if p := d.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// fixed copies exactly n bytes.
func (d *decoder) fixed(n int) []byte {
	return clone(d.take(n))
}

// peerID reads a 32-byte ID (zero on a short input).
func (d *decoder) peerID() PeerID {
	var id PeerID
	copy(id[:], d.take(len(id)))
	return id
}

// str reads a u16-prefixed string of at most max bytes that must be valid UTF-8.
func (d *decoder) str(max int) string {
	n := int(d.u16())
	if d.err == nil && n > max {
		d.fail(fmt.Errorf("%w: string of %d bytes over cap %d", ErrProtocol, n, max))
		return ""
	}
	p := d.take(n)
	if d.err == nil && !utf8.Valid(p) {
		d.fail(fmt.Errorf("%w: string is not valid utf-8", ErrProtocol))
		return ""
	}
	return string(p)
}

// blob reads a u32-prefixed byte slice of at most max bytes (copied).
func (d *decoder) blob(max int) []byte {
	n := d.u32()
	if d.err == nil && uint64(n) > uint64(max) {
		d.fail(fmt.Errorf("%w: blob of %d bytes over cap %d", ErrProtocol, n, max))
		return nil
	}
	return clone(d.take(int(n)))
}

// rest returns (a copy of) everything not read yet.
func (d *decoder) rest() []byte {
	return clone(d.take(len(d.b)))
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// finish returns the first error, or an error if bytes are left over: a
// payload must be exactly one value, which keeps encodings canonical.
func (d *decoder) finish() error {
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return errTrailing
	}
	return nil
}

func clone(p []byte) []byte {
	if p == nil {
		return nil
	}
	return append([]byte{}, p...)
}
