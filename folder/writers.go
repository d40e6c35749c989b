package folder

import (
	"os"
	"syscall"
)

// fileID names a file independently of its path: device and inode.
type fileID struct {
	Dev, Ino uint64
}

// idOf returns the device and inode of fi, if the platform has them.
func idOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{Dev: uint64(st.Dev), Ino: st.Ino}, true //nolint:unconvert // Dev's type differs by platform
}

// writeTarget is a file to check for writers: its path and its identity.
type writeTarget struct {
	Path string
	ID   fileID
}
