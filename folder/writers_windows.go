package folder

import (
	"os"
	"syscall"
)

// idOf returns what stands in for a file's identity on Windows, where a
// FileInfo carries no file index: its creation time. It only has to tell
// versions of a path apart together with size and mtime (stateOf), since
// openForWriting finds no writers here anyway. A file recreated under the
// same name within seconds may inherit the old creation time (NTFS
// tunnelling); its size or mtime then tells it apart.
func idOf(fi os.FileInfo) (fileID, bool) {
	if d, ok := fi.Sys().(*syscall.Win32FileAttributeData); ok {
		return fileID{Ino: uint64(d.CreationTime.Nanoseconds())}, true
	}
	return fileID{}, true
}
