package sync

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// bulkNice is how much lower than the rest of the node the threads that
// read, hash and write file blocks run.
const bulkNice = 10

// background moves the calling goroutine onto an OS thread of its own that
// the kernel schedules after the node's other threads: file transfers take
// whatever CPU is left, and chat, FUSE and the network stay quick while a
// transfer saturates the machine. The goroutine keeps the thread until it
// returns, and the thread then ends with it, so the lower priority never
// reaches another goroutine (and, without root, it could not be raised
// back anyway).
func background() {
	runtime.LockOSThread()
	// A failure loses only the lower priority: the transfer runs as before.
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), bulkNice)
}
