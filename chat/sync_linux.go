package chat

import (
	"os"
	"syscall"
)

// fdatasync is the group commit's default: the wal's size and blocks never
// change, so its data is all that has to reach the disk.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
