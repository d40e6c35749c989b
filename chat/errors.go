package chat

import "errors"

var (
	// ErrTooLong: a chat line is longer than MaxBytes.
	ErrTooLong = errors.New("chat line too long")
	// ErrBadUTF8: a chat line is not valid UTF-8.
	ErrBadUTF8 = errors.New("chat line is not utf-8")
)
