package sync

import (
	"errors"
	"fmt"
)

var (
	// ErrChecksum: a block or a whole file did not match its manifest hash.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrInvalidName: a path or name is unsafe or not portable.
	ErrInvalidName = errors.New("invalid name")
	// ErrNoSpace: not enough free disk space for a transfer.
	ErrNoSpace = errors.New("no space left")
	// ErrQuota: a peer's partial transfers would exceed its quota.
	ErrQuota = errors.New("partial quota exceeded")
	// ErrClosed: the engine is closed.
	ErrClosed = errors.New("engine closed")
	// errProto: a peer sent a malformed message.
	errProto = errors.New("protocol error")
)

// TransferError describes a failed step of one transfer, shaped like
// io/fs.PathError.
type TransferError struct {
	Peer string // peer short ID
	Path string // relative path of the file
	Op   string // what failed, e.g. "verify block"
	Err  error
}

// Error returns "op path (peer): err".
func (e *TransferError) Error() string {
	return fmt.Sprintf("%s %s (peer %s): %v", e.Op, e.Path, e.Peer, e.Err)
}

// Unwrap returns the underlying error.
func (e *TransferError) Unwrap() error { return e.Err }
