//go:build unix

package folder

import (
	"os"
	"syscall"
)

// idOf returns the device and inode of fi, if the platform has them.
func idOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{Dev: uint64(st.Dev), Ino: st.Ino}, true // Dev's type differs by platform
}
