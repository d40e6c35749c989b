//go:build linux || darwin

package sync

import "syscall"

// mkfifo makes a FIFO at path, a special file the outbox must not send.
func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }

// mknull makes a character device like /dev/null (1, 3) at path. Making one
// needs root, which CI has.
func mknull(path string) error { return syscall.Mknod(path, syscall.S_IFCHR|0o644, 1<<8|3) }
