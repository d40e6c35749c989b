// Package testutil holds helpers shared by meshfs tests: polling instead of
// sleeping, FUSE availability, and loggers that write to the test's output.
package testutil

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"
)

// WaitFor calls f every few milliseconds until it returns nil or timeout
// passes, and returns f's last error (wrapped) on timeout.
func WaitFor(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	delay := 2 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still failing after %v: %w", timeout, err)
		}
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// Logger returns a logger that writes to the test's output, so log lines
// appear next to the test that produced them.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// FUSEError says why FUSE cannot be used here, or nil when it can.
func FUSEError() error {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open /dev/fuse: %w", err)
	}
	f.Close()
	if os.Geteuid() == 0 {
		return nil // go-fuse mounts directly as root
	}
	for _, name := range []string{"fusermount3", "fusermount"} {
		if _, err := exec.LookPath(name); err == nil {
			return nil
		}
	}
	return errors.New("no fusermount3 or fusermount on PATH")
}

// RequireFUSE skips the test when FUSE is unavailable, unless
// MESHFS_REQUIRE_FUSE=1 is set (as in CI), where it fails instead: a FUSE
// test that silently skips there would hide a broken machine.
func RequireFUSE(t testing.TB) {
	t.Helper()
	err := FUSEError()
	if err == nil {
		return
	}
	if os.Getenv("MESHFS_REQUIRE_FUSE") == "1" {
		t.Fatalf("FUSE is required (MESHFS_REQUIRE_FUSE=1) but unavailable: %v", err)
	}
	t.Skipf("FUSE unavailable: %v", err)
}
