package sync

import (
	"errors"
	"syscall"
)

// Received blocks of large files are written with O_DIRECT, straight from
// the receiver's aligned block buffers (blockbuf.go), when the partial's
// filesystem allows it:
//
//   - A received file is written once and read later, if at all: it has no
//     business evicting the user's working set from the page cache, and the
//     final fsync then has almost nothing left to write.
//   - On the reference virtual machine, fresh page-cache pages cost the host
//     a fault each: the first GiB written through the page cache after a
//     quiet moment took 2.4-3.0 s of system time, against 0.6 s of device
//     time with O_DIRECT (1 MiB writes, fsync included).
//
// Small files, the unaligned tail of a file and filesystems without
// O_DIRECT (tmpfs before Linux 6.6, some FUSE and network filesystems) use
// ordinary writes.

// directMinSize is the smallest file written with O_DIRECT: below it the
// page cache costs little and a synchronous device write per block would
// only add latency.
const directMinSize = 8 << 20

// writeBlock writes one verified block or piece of t at off: with O_DIRECT
// when t has a direct descriptor and the data is aligned in memory, length
// and file offset (blockBufs are, and pieces start at multiples of
// pieceSize within blocks of a multiple of it; only a file's tail is
// short), else through the page
// cache. A filesystem that accepted O_DIRECT at open but refuses the write
// (EINVAL) gets ordinary writes from then on; the descriptor stays open
// until the partial's files close, as another source may be writing
// through it.
func (ib *inbound) writeBlock(t *inTransfer, data []byte, off int64) error {
	if t.direct != nil && !t.noDirect.Load() && dioAligned(data) && off%dioAlign == 0 {
		_, err := ib.writeAt(t.direct, data, off)
		if !errors.Is(err, syscall.EINVAL) {
			return err
		}
		t.noDirect.Store(true)
	}
	_, err := ib.writeAt(t.f, data, off)
	return err
}
