package seal

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// Seal starts a box to the members whose certified keys are in to and
// writes it to dst: what is written to the returned writer is encrypted in
// chunks of 64 KiB, and Close writes the last chunk. A box that is not
// closed cannot be opened. A sender that must read its own box again
// includes its own key in to.
func Seal(dst io.Writer, to ...ed25519.PublicKey) (io.WriteCloser, error) {
	if len(to) == 0 {
		return nil, errors.New("seal: no recipients")
	}
	rs := make([]age.Recipient, len(to))
	for i, pub := range to {
		r, err := Recipient(pub)
		if err != nil {
			return nil, fmt.Errorf("seal to recipient %d: %w", i, err)
		}
		rs[i] = r
	}
	w, err := age.Encrypt(dst, rs...)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return w, nil
}

// Open reads the header of the box in src and returns a reader of its
// plaintext for the member holding self. It fails with ErrNotRecipient
// when the box is not addressed to self, and with ErrDamaged when the
// header is not a valid age header. Reads fail with ErrDamaged at the
// first chunk that was altered or cut off; plaintext they return before
// that is authentic, but only io.EOF says the whole message arrived.
// An error of src itself is returned as it is, wrapped.
func Open(src io.Reader, self ed25519.PrivateKey) (io.Reader, error) {
	id, err := Identity(self)
	if err != nil {
		return nil, fmt.Errorf("open box: %w", err)
	}
	s := &source{r: src}
	r, err := age.Decrypt(s, id)
	if err != nil {
		return nil, s.classify(err)
	}
	return &opened{r: r, src: s}, nil
}

// SealBytes returns msg sealed to the members whose keys are in to.
func SealBytes(msg []byte, to ...ed25519.PublicKey) ([]byte, error) {
	var b bytes.Buffer
	w, err := Seal(&b, to...)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(msg); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return b.Bytes(), nil
}

// OpenBytes returns the message in box for the member holding self, if it
// is at most limit bytes. A box holding more fails with ErrTooLarge as
// soon as limit+1 bytes are decrypted: it never allocates more than
// limit+1 bytes for the message, nor decrypts the rest of the box.
func OpenBytes(box []byte, self ed25519.PrivateKey, limit int) ([]byte, error) {
	if limit < 0 {
		return nil, fmt.Errorf("open box: negative limit %d", limit)
	}
	r, err := Open(bytes.NewReader(box), self)
	if err != nil {
		return nil, err
	}
	// The plaintext is shorter than the box, so a box no longer than
	// limit needs no more room than itself.
	buf := make([]byte, min(limit, len(box))+1)
	n, err := readAll(r, buf)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("open box: %w of %d bytes", ErrTooLarge, limit)
	}
	return buf[:n], nil
}

// readAll reads r into buf until io.EOF or until buf is full.
func readAll(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
