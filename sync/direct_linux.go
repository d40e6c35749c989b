package sync

import (
	"os"

	"golang.org/x/sys/unix"
)

// openDirect opens the partial at path for O_DIRECT writes of blocks of
// blockSize. It returns nil when the filesystem does not report a direct
// I/O alignment (statx STATX_DIOALIGN) that blockSize and dioAlign
// satisfy, or refuses O_DIRECT.
func openDirect(path string, blockSize int) *os.File {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_DIOALIGN, &st); err != nil {
		return nil
	}
	align := int(max(st.Dio_offset_align, st.Dio_mem_align))
	if st.Mask&unix.STATX_DIOALIGN == 0 || align == 0 || align > dioAlign || blockSize%align != 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}
