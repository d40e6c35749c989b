//go:build linux

package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"testing"

	"github.com/meshfs/meshfs/internal/testutil"
)

func TestErrno(t *testing.T) {
	x := newErrnos(testutil.Logger(t))
	tests := []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"nil", nil, 0},
		{"errno", syscall.ENOSPC, syscall.ENOSPC},
		{"path error", &os.PathError{Op: "open", Path: "/x", Err: syscall.EACCES}, syscall.EACCES},
		{"wrapped", fmt.Errorf("append: %w", syscall.EROFS), syscall.EROFS},
		{"errno method", errnoError{syscall.EMSGSIZE}, syscall.EMSGSIZE},
		{"not exist", fmt.Errorf("x: %w", os.ErrNotExist), syscall.ENOENT},
		{"exist", fmt.Errorf("x: %w", os.ErrExist), syscall.EEXIST},
		{"permission", os.ErrPermission, syscall.EPERM},
		{"canceled", context.Canceled, syscall.EINTR},
		{"unknown", errors.New("boom"), syscall.EIO},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := x.errno("test", tc.err); got != tc.want {
				t.Errorf("errno(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if got := x.say(errors.New("too long")); got != syscall.EINVAL {
		t.Errorf("say(plain) = %v, want EINVAL", got)
	}
}

// countHandler counts records.
type countHandler struct {
	slog.Handler
	n *int
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h countHandler) Handle(ctx context.Context, r slog.Record) error { *h.n++; return nil }

func TestErrnoLogsUnknownOnce(t *testing.T) {
	var n int
	x := newErrnos(slog.New(countHandler{slog.DiscardHandler, &n}))
	for range 3 {
		x.errno("read", errors.New("boom"))
	}
	x.errno("write", errors.New("boom"))
	if n != 2 {
		t.Errorf("log records = %d, want 2 (once per op and error type)", n)
	}
}
