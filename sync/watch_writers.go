package sync

import (
	"os"
	"syscall"
)

// watchFileID names a file independently of its path: device and inode.
type watchFileID struct {
	Dev, Ino uint64
}

// watchIDOf returns the device and inode of fi, if the platform has them.
func watchIDOf(fi os.FileInfo) (watchFileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return watchFileID{}, false
	}
	return watchFileID{Dev: uint64(st.Dev), Ino: st.Ino}, true //nolint:unconvert // Dev's type differs by platform
}

// watchTarget is a file to check for writers: its path and its identity.
type watchTarget struct {
	Path string
	ID   watchFileID
}
