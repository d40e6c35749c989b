//go:build !linux

package chat

import "os"

// fdatasync is a full fsync where the system has no fdatasync: correct,
// only slower.
func fdatasync(f *os.File) error { return f.Sync() }
