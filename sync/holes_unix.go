//go:build linux || darwin

package sync

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// hasData reports whether the n bytes of f at off may hold data, asking the
// file system (SEEK_DATA) rather than reading them: a range that is all
// hole reads as zeros. When the file system cannot tell, the answer is yes
// and the caller reads.
func hasData(f *os.File, off int64, n int) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return true
	}
	data := true
	rc.Control(func(fd uintptr) {
		next, err := unix.Seek(int(fd), off, unix.SEEK_DATA)
		switch {
		case errors.Is(err, unix.ENXIO): // no data at or after off
			data = false
		case err == nil:
			data = next < off+int64(n)
		}
	})
	return data
}
