//go:build linux || darwin

package sync

import "syscall"

// mkfifo makes a FIFO at path, a special file the outbox must not send.
func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }
