package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var e Encoder
	e.U8(1)
	e.U16(2)
	e.U32(3)
	e.U64(4)
	e.Str("héllo")
	e.Blob([]byte{9, 9})
	e.Raw([]byte{7})
	d := Decoder{B: e.B}
	if d.U8() != 1 || d.U16() != 2 || d.U32() != 3 || d.U64() != 4 || d.Str(16) != "héllo" ||
		!bytes.Equal(d.Blob(2), []byte{9, 9}) || !bytes.Equal(d.Rest(), []byte{7}) {
		t.Fatal("values read back differ")
	}
	if err := d.End(); err != nil {
		t.Fatalf("End = %v", err)
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		read func(*Decoder)
	}{
		{"truncated", []byte{0, 0, 0}, func(d *Decoder) { d.U32() }},
		{"trailing", []byte{1, 2}, func(d *Decoder) { d.U8() }},
		{"string over cap", []byte{0, 5, 'a', 'b', 'c', 'd', 'e'}, func(d *Decoder) { d.Str(4) }},
		{"string not utf-8", []byte{0, 1, 0xff}, func(d *Decoder) { d.Str(4) }},
		{"blob length 2^32-1", []byte{0xff, 0xff, 0xff, 0xff}, func(d *Decoder) { d.Blob(1 << 20) }},
		{"first failure sticks", []byte{0, 9}, func(d *Decoder) { d.Str(1); d.Fail(errors.New("later")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decoder{B: tc.in}
			tc.read(&d)
			err := d.End()
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("End = %v, want ErrMalformed", err)
			}
			if bytes.Contains([]byte(err.Error()), []byte("later")) {
				t.Fatalf("a later failure replaced the first: %v", err)
			}
		})
	}
}
