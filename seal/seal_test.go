package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strconv"
	"testing"
	"testing/iotest"

	"filippo.io/age"
)

var (
	alice = member(1)
	bob   = member(2)
	carol = member(3)
)

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			msg := randomBytes(t, n)
			box := sealed(t, msg, bob)
			got, err := OpenBytes(box, bob, n)
			if err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("OpenBytes(SealBytes(%d bytes)) = %d bytes, %v", n, len(got), err)
			}
		})
	}
}

// TestStream seals 5 MiB written in odd pieces and reads it back in
// other odd pieces.
func TestStream(t *testing.T) {
	msg := randomBytes(t, 5<<20)
	var box bytes.Buffer
	w, err := Seal(&box, pubOf(bob))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyBuffer(w, bytes.NewReader(msg), make([]byte, 12345)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(&box, bob)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	h := sha256.New()
	if _, err := io.CopyBuffer(h, iotest.HalfReader(r), make([]byte, 7777)); err != nil {
		t.Fatalf("reading the box: %v", err)
	}
	if got, want := h.Sum(nil), sha256.Sum256(msg); !bytes.Equal(got, want[:]) {
		t.Errorf("Open(Seal(5 MiB)) differs")
	}
}

// TestRecipients: each member a box is sealed to opens it; another cannot,
// and learns only that it is not addressed to it.
func TestRecipients(t *testing.T) {
	msg := []byte("for bob, and alice keeps a copy")
	box := sealed(t, msg, bob, alice)
	for _, m := range []ed25519.PrivateKey{alice, bob} {
		if got, err := OpenBytes(box, m, 100); err != nil || !bytes.Equal(got, msg) {
			t.Errorf("OpenBytes = %q, %v, want %q", got, err, msg)
		}
	}
	_, err := OpenBytes(box, carol, 100)
	if !errors.Is(err, ErrNotRecipient) || errors.Is(err, ErrDamaged) {
		t.Errorf("OpenBytes by carol = %v, want ErrNotRecipient alone", err)
	}
	if _, ok := errors.AsType[*age.NoIdentityMatchError](err); !ok {
		t.Errorf("OpenBytes by carol = %v, does not wrap *age.NoIdentityMatchError", err)
	}
}

func TestTruncated(t *testing.T) {
	box := sealed(t, []byte("a short line to bob"), bob)
	for i := range len(box) {
		if got, err := OpenBytes(box[:i], bob, 100); !errors.Is(err, ErrDamaged) {
			t.Errorf("OpenBytes(box[:%d] of %d) = %q, %v, want ErrDamaged", i, len(box), got, err)
		}
	}
	if _, err := OpenBytes(append(bytes.Clone(box), 0), bob, 100); !errors.Is(err, ErrDamaged) {
		t.Errorf("OpenBytes(box + 1 byte) = %v, want ErrDamaged", err)
	}
}

// TestFlipped flips every bit of a box to bob and carol. Each must be
// refused; only a flip inside a recipient stanza may look like a box for
// someone else, since stanzas name no one.
func TestFlipped(t *testing.T) {
	box := sealed(t, []byte("a short line to bob"), bob, carol)
	stanzas := bytes.Index(box, []byte("\n-> X25519 ")) + 1
	mac := bytes.Index(box, []byte("\n---"))
	if stanzas <= 0 || mac < stanzas {
		t.Fatalf("no stanza in header %q", box)
	}
	for i := range len(box) {
		for bit := range 8 {
			b := bytes.Clone(box)
			b[i] ^= 1 << bit
			got, err := OpenBytes(b, bob, 100)
			switch {
			case errors.Is(err, ErrDamaged):
			case errors.Is(err, ErrNotRecipient) && i >= stanzas && i < mac:
			default:
				t.Errorf("OpenBytes(bit %d of byte %d flipped) = %q, %v", bit, i, got, err)
			}
		}
	}
}

// TestNoPlaintext: a random marker in the message never shows in the box.
func TestNoPlaintext(t *testing.T) {
	marker := []byte(hex.EncodeToString(randomBytes(t, 16)))
	msg := bytes.Repeat(append([]byte("to: bob\n"), marker...), 100)
	for _, to := range [][]ed25519.PrivateKey{{bob}, {bob, alice}} {
		box := sealed(t, msg, to...)
		if bytes.Contains(box, marker) || bytes.Contains(box, []byte("to: bob")) {
			t.Errorf("box to %d members contains the plaintext", len(to))
		}
		if got, err := OpenBytes(box, bob, len(msg)); err != nil || !bytes.Equal(got, msg) {
			t.Errorf("OpenBytes = %d bytes, %v", len(got), err)
		}
	}
}

func TestLimit(t *testing.T) {
	msg := randomBytes(t, 1000)
	box := sealed(t, msg, bob)
	for _, tc := range []struct {
		limit int
		err   error
	}{{1000, nil}, {1 << 30, nil}, {999, ErrTooLarge}, {0, ErrTooLarge}} {
		if _, err := OpenBytes(box, bob, tc.limit); !errors.Is(err, tc.err) {
			t.Errorf("OpenBytes(1000 bytes, limit %d) = %v, want %v", tc.limit, err, tc.err)
		}
	}
	if _, err := OpenBytes(box, bob, -1); err == nil {
		t.Errorf("OpenBytes(limit -1) = nil error")
	}
}

// TestLimitStopsEarly: a box of 1 MiB with a damaged last chunk fails
// with ErrTooLarge under a small limit, so its end was never decrypted.
func TestLimitStopsEarly(t *testing.T) {
	box := sealed(t, randomBytes(t, 1<<20), bob)
	box[len(box)-1] ^= 1
	if _, err := OpenBytes(box, bob, 1<<20); !errors.Is(err, ErrDamaged) {
		t.Fatalf("OpenBytes(damaged end, full limit) = %v, want ErrDamaged", err)
	}
	if _, err := OpenBytes(box, bob, 1000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("OpenBytes(damaged end, limit 1000) = %v, want ErrTooLarge", err)
	}
}

// TestLimitAllocates: opening a box of 8 MiB under a 1 KiB limit
// allocates about one chunk, not the message.
func TestLimitAllocates(t *testing.T) {
	box := sealed(t, randomBytes(t, 8<<20), bob)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := OpenBytes(box, bob, 1024)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("OpenBytes = %v, want ErrTooLarge", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("OpenBytes(8 MiB box, limit 1 KiB) allocated %d bytes", n)
	}
}

// TestSourceError: a failing source is reported as itself, not as a
// damaged box, in the header and in the payload.
func TestSourceError(t *testing.T) {
	errLink := errors.New("link down")
	box := sealed(t, randomBytes(t, 200<<10), bob)
	for _, n := range []int64{0, 50, 100 << 10} {
		src := io.MultiReader(io.LimitReader(bytes.NewReader(box), n), iotest.ErrReader(errLink))
		r, err := Open(src, bob)
		if err == nil {
			_, err = io.Copy(io.Discard, r)
		}
		if !errors.Is(err, errLink) || errors.Is(err, ErrDamaged) {
			t.Errorf("Open(source failing after %d bytes) = %v, want the source's error", n, err)
		}
	}
}

func TestSealRefuses(t *testing.T) {
	if _, err := SealBytes([]byte("x")); err == nil {
		t.Error("SealBytes to no one = nil error")
	}
	if _, err := Open(bytes.NewReader(sealed(t, nil, bob)), bob[:10]); !errors.Is(err, ErrBadKey) {
		t.Errorf("Open with a short key = %v, want ErrBadKey", err)
	}
}

// TestUnclosed: a box whose writer was not closed lacks its last chunk.
func TestUnclosed(t *testing.T) {
	var box bytes.Buffer
	w, err := Seal(&box, pubOf(bob))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randomBytes(t, 100<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBytes(box.Bytes(), bob, 1<<20); !errors.Is(err, ErrDamaged) {
		t.Errorf("OpenBytes(unclosed box) = %v, want ErrDamaged", err)
	}
}
