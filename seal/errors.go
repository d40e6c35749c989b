package seal

import (
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

var (
	// ErrNotRecipient: the box was not sealed to this member. Recipients
	// are anonymous, so a box whose stanza for this member was damaged
	// looks the same. The error also wraps age's *NoIdentityMatchError.
	ErrNotRecipient = errors.New("not addressed to this member")
	// ErrDamaged: the box is truncated, altered or not an age file at all.
	ErrDamaged = errors.New("damaged or truncated box")
	// ErrBadKey: a member key that cannot be used for encryption.
	ErrBadKey = errors.New("unusable member key")
	// ErrTooLarge: the box holds more than the caller's limit.
	ErrTooLarge = errors.New("message over the size limit")
)

// source passes reads through and remembers the first read error other
// than io.EOF, so that a failing source is not reported as a damaged box.
type source struct {
	r   io.Reader
	err error
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// classify turns an error from age while opening into one of ours: the
// source's own error if it failed, ErrNotRecipient if no stanza was ours,
// and ErrDamaged for anything else age refused.
func (s *source) classify(err error) error {
	if err == nil || err == io.EOF {
		return err // io.EOF must reach the reader's caller unwrapped
	}
	if s.err != nil {
		return fmt.Errorf("read box: %w", s.err)
	}
	if _, ok := errors.AsType[*age.NoIdentityMatchError](err); ok {
		return fmt.Errorf("open box: %w: %w", ErrNotRecipient, err)
	}
	return fmt.Errorf("open box: %w: %w", ErrDamaged, err)
}

// opened is the plaintext of a box: age's reader with its errors classified.
type opened struct {
	r   io.Reader
	src *source
}

func (o *opened) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	return n, o.src.classify(err)
}
