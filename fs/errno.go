//go:build linux

package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"sync"
	"syscall"
)

// errnoer is implemented by errors that know the errno they stand for, so a
// Syncer can choose the errno a FUSE caller sees without fs importing it.
type errnoer interface {
	Errno() syscall.Errno
}

// errnos translates Go errors into errnos at the FUSE boundary. It is the
// only place that does so. An error it does not recognise becomes EIO and
// is logged once per operation and error type, so a recurring failure
// cannot flood the log.
type errnos struct {
	log *slog.Logger

	mu     sync.Mutex
	logged map[string]bool // guarded by mu; keys are "op/%T"
}

func newErrnos(log *slog.Logger) *errnos {
	return &errnos{log: log, logged: make(map[string]bool)}
}

// known returns the errno err carries or stands for, or 0 when it has none.
func known(err error) syscall.Errno {
	if e, ok := errors.AsType[syscall.Errno](err); ok {
		return e
	}
	var e errnoer
	if errors.As(err, &e) {
		return e.Errno()
	}
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, iofs.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, iofs.ErrPermission):
		return syscall.EPERM
	case errors.Is(err, iofs.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, iofs.ErrClosed):
		return syscall.EBADF
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return syscall.EINTR
	}
	return 0
}

// errno translates err for operation op; unknown errors become EIO.
func (x *errnos) errno(op string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e := known(err); e != 0 {
		return e
	}
	x.once(op, err, "file operation failed with an unexpected error, reported as EIO",
		"check free space and permissions of the backing folder; report a bug if it repeats")
	return syscall.EIO
}

// say translates an error from Syncer.Say. Say refuses lines it will not
// send (too long, not text); such a refusal carries no errno and becomes
// EINVAL, which tells the writer the line itself was rejected. Errors that
// carry an errno (a full disk while appending the log) keep it.
func (x *errnos) say(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if e := known(err); e != 0 {
		return e
	}
	x.once("chat write", err, "chat line refused, reported as EINVAL",
		"write plain text lines of at most 4 KiB")
	return syscall.EINVAL
}

func (x *errnos) once(op string, err error, msg, fix string) {
	key := fmt.Sprintf("%s/%T", op, err)
	x.mu.Lock()
	seen := x.logged[key]
	x.logged[key] = true
	x.mu.Unlock()
	if !seen {
		x.log.Warn(msg, "op", op, "err", err, "fix", fix)
	}
}
