package seal

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpenBytes: opening never panics, refuses with one of the package's
// sentinels, and never returns more than the limit; a box it opens holds
// one of the seed messages, since nobody without a member key can make a
// new box that opens.
func FuzzOpenBytes(f *testing.F) {
	msgs := [][]byte{nil, {0}, []byte("hello bob"), bytes.Repeat([]byte("x"), 64<<10+1)}
	for _, m := range msgs {
		box := sealed(f, m, bob)
		f.Add(box, uint32(len(m)))
		f.Add(box[:len(box)/2], uint32(len(m)))
		f.Add(box, uint32(len(m)/2))
	}
	f.Add(sealed(f, msgs[2], carol, bob), uint32(100))
	f.Add(sealed(f, msgs[2], carol), uint32(100))
	f.Add([]byte("age-encryption.org/v1\n"), uint32(100))
	f.Fuzz(func(t *testing.T, box []byte, limit uint32) {
		got, err := OpenBytes(box, bob, int(limit))
		if err != nil {
			if !errors.Is(err, ErrDamaged) && !errors.Is(err, ErrNotRecipient) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("OpenBytes = %v, not a sentinel", err)
			}
			return
		}
		if len(got) > int(limit) {
			t.Fatalf("OpenBytes(limit %d) = %d bytes", limit, len(got))
		}
		for _, m := range msgs {
			if bytes.Equal(got, m) {
				return
			}
		}
		t.Fatalf("OpenBytes = %q, not a sealed message", got)
	})
}
