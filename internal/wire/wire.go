// Package wire is meshfs's one binary codec: fixed layouts of big-endian
// integers, u16-prefixed strings and u32-prefixed blobs. mesh encodes its
// frames' payloads with it and sync its transfer messages.
//
// A Decoder checks every length before it reads or allocates, so a peer's
// length field cannot make it allocate more than the message holds. The
// first failure sticks and later reads return zero values: decoding code
// reads a message straight through and checks the error once, at End.
package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every error a Decoder returns.
var ErrMalformed = errors.New("malformed message")

// Encoder appends values to B.
type Encoder struct{ B []byte }

// U8 appends one byte.
func (e *Encoder) U8(v uint8) { e.B = append(e.B, v) }

// U16 appends v big-endian.
func (e *Encoder) U16(v uint16) { e.B = binary.BigEndian.AppendUint16(e.B, v) }

// U32 appends v big-endian.
func (e *Encoder) U32(v uint32) { e.B = binary.BigEndian.AppendUint32(e.B, v) }

// U64 appends v big-endian.
func (e *Encoder) U64(v uint64) { e.B = binary.BigEndian.AppendUint64(e.B, v) }

// Raw appends p as it is.
func (e *Encoder) Raw(p []byte) { e.B = append(e.B, p...) }

// Str appends a string with a u16 length; callers keep it under 64 KiB.
func (e *Encoder) Str(s string) {
	e.U16(uint16(len(s)))
	e.B = append(e.B, s...)
}

// Blob appends p with a u32 length.
func (e *Encoder) Blob(p []byte) {
	e.U32(uint32(len(p)))
	e.B = append(e.B, p...)
}

// Decoder reads what Encoder writes from B.
type Decoder struct {
	B   []byte
	err error
}

// Take returns the next n bytes without copying them.
func (d *Decoder) Take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.B) {
		d.err = fmt.Errorf("%w: truncated", ErrMalformed)
		return nil
	}
	p := d.B[:n]
	d.B = d.B[n:]
	return p
}

// U8 reads one byte.
func (d *Decoder) U8() uint8 {
	if p := d.Take(1); p != nil {
		return p[0]
	}
	return 0
}

// U16 reads a big-endian uint16.
func (d *Decoder) U16() uint16 {
	if p := d.Take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

// U32 reads a big-endian uint32.
func (d *Decoder) U32() uint32 {
	if p := d.Take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

// U64 reads a big-endian uint64.
func (d *Decoder) U64() uint64 {
	if p := d.Take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// Into copies exactly len(dst) bytes into dst (leaving it zero on a short
// input).
func (d *Decoder) Into(dst []byte) { copy(dst, d.Take(len(dst))) }

// Fixed returns a copy of exactly n bytes.
func (d *Decoder) Fixed(n int) []byte { return bytes.Clone(d.Take(n)) }

// Str reads a u16-prefixed string of at most max bytes that must be valid
// UTF-8.
func (d *Decoder) Str(max int) string {
	n := int(d.U16())
	if d.err == nil && n > max {
		d.Failf("string of %d bytes over cap %d", n, max)
		return ""
	}
	p := d.Take(n)
	if d.err == nil && !utf8.Valid(p) {
		d.Failf("string is not valid utf-8")
		return ""
	}
	return string(p)
}

// Blob reads a u32-prefixed byte slice of at most max bytes (copied).
func (d *Decoder) Blob(max int) []byte {
	n := d.U32()
	if d.err == nil && uint64(n) > uint64(max) {
		d.Failf("blob of %d bytes over cap %d", n, max)
		return nil
	}
	return bytes.Clone(d.Take(int(n)))
}

// Rest returns a copy of everything not read yet.
func (d *Decoder) Rest() []byte { return bytes.Clone(d.Take(len(d.B))) }

// Len is how many bytes are left.
func (d *Decoder) Len() int { return len(d.B) }

// Err is the first failure so far.
func (d *Decoder) Err() error { return d.err }

// Fail records err (wrapped in ErrMalformed unless it already is) if no
// failure came first.
func (d *Decoder) Fail(err error) {
	if d.err == nil && err != nil {
		if !errors.Is(err, ErrMalformed) {
			err = fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		d.err = err
	}
}

// Failf records a formatted failure if no failure came first.
func (d *Decoder) Failf(format string, args ...any) {
	d.Fail(fmt.Errorf(format, args...))
}

// End returns the first failure, or one if bytes are left over: a message
// is exactly one value, which keeps encodings canonical.
func (d *Decoder) End() error {
	if d.err == nil && len(d.B) != 0 {
		d.Failf("%d trailing bytes", len(d.B))
	}
	return d.err
}
