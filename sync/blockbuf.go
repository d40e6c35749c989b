package sync

import (
	"context"
	"unsafe"
)

// blockBufs are one receiver's block buffers. The mesh reads every frame
// into the same buffer, so a CHUNK's block is copied into one of these
// before it is queued; the receiver writes it from there (with O_DIRECT
// when it can: the buffers are aligned for it) and gives it back. A fixed
// few per peer keep memory bounded and warm: fresh memory is slow to fault
// in on virtual machines, and a new 1 MiB slice per block made the
// collector run every few blocks.
type blockBufs struct{ free chan []byte }

// blockBufCount is how many blocks of one peer can be queued or being
// written at once: enough for the next block to be hashed and copied while
// one is written.
const blockBufCount = 4

// dioAlign is the address and length alignment O_DIRECT may ask for.
const dioAlign = 4096

func newBlockBufs() blockBufs {
	free := make(chan []byte, blockBufCount)
	for range blockBufCount {
		free <- nil // allocated on first use, at the size asked for
	}
	return blockBufs{free: free}
}

// get waits for a free buffer and returns it with length n, or nil when ctx
// ends first.
func (b blockBufs) get(ctx context.Context, n int) []byte {
	select {
	case buf := <-b.free:
		if cap(buf) < n {
			buf = alignedBuf(n)
		}
		return buf[:n]
	case <-ctx.Done():
		return nil
	}
}

// put gives a buffer back. A zero block's message took none (nil).
func (b blockBufs) put(buf []byte) {
	if buf != nil {
		b.free <- buf
	}
}

// alignedBuf returns n bytes starting at a dioAlign boundary. The Go
// collector never moves heap objects, so the alignment holds.
func alignedBuf(n int) []byte {
	raw := make([]byte, n+dioAlign)
	off := (dioAlign - int(uintptr(unsafe.Pointer(&raw[0]))%dioAlign)) % dioAlign
	return raw[off : off+n : off+n]
}

// dioAligned reports whether b can be written with O_DIRECT as it is.
func dioAligned(b []byte) bool {
	return len(b) > 0 && len(b)%dioAlign == 0 && uintptr(unsafe.Pointer(&b[0]))%dioAlign == 0
}
