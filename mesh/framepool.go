package mesh

// framePool recycles the frames of SendBulk. A file transfer sends one
// frame of a block's size (1 MiB by default) after another; allocating each
// anew made the collector run every few frames, and on virtual machines
// every fresh page of memory is slow to fault in. A bounded free list keeps
// at most cap(free) idle frames, so what a node holds on to between
// transfers stays small.
type framePool struct{ free chan []byte }

// framePoolSize is how many idle frames a node keeps: one per queued bulk
// frame of a connection, plus the one being written.
const framePoolSize = 9

// ioBufPoolSize is how many idle batchConn buffers a node keeps.
const ioBufPoolSize = 16

// newFramePool returns a pool keeping at most size idle buffers.
func newFramePool(size int) framePool { return framePool{free: make(chan []byte, size)} }

// get returns an empty frame buffer with room for n bytes.
func (p framePool) get(n int) []byte {
	select {
	case b := <-p.free:
		if cap(b) >= n {
			return b[:0]
		}
	default:
	}
	return make([]byte, 0, n)
}

// put returns a frame the writer is done with; it is dropped when the
// pool is full.
func (p framePool) put(b []byte) {
	select {
	case p.free <- b:
	default:
	}
}
