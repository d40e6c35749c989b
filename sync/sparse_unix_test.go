//go:build linux || darwin

package sync

import (
	"syscall"
	"testing"
)

// allocated returns the bytes the file at path occupies on disk
// (st_blocks are 512-byte units on Linux and macOS alike).
func allocated(t testing.TB, path string) (int64, bool) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Blocks * 512, true
}
