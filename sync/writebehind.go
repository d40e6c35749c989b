package sync

import "time"

// writeBehind lets a receiver check the next block while the previous one
// is being written: an O_DIRECT write waits on the disk without using the
// CPU, and a block's hash costs about half as long as its write here, so
// doing them in turn left a core idle. One write is in flight at a time;
// its block counts as held, and its buffer goes back to the peer's pool,
// only once it is written (settle).
type writeBehind struct {
	jobs chan blockWrite
	done chan error
	exit chan struct{}
	cur  *blockWrite // in flight; receiver goroutine only
}

// blockWrite is one verified block, or one piece of a block, on its way
// to its partial.
type blockWrite struct {
	t     *inTransfer
	index uint32
	off   int // of data within the block: a piece's offset, else 0
	data  []byte
	buf   []byte // p.bufs buffer holding data
	zeros int    // > 0: a zero block of this length, and data is empty
	piece bool   // a piece of a larger block: the block is not held until held
	held  bool   // the block verified: held once this is written
}

// newWriteBehind starts the writer goroutine; the receiver that owns it
// stops it with stop.
func newWriteBehind(ib *inbound) *writeBehind {
	w := &writeBehind{jobs: make(chan blockWrite), done: make(chan error, 1), exit: make(chan struct{})}
	go func() {
		defer close(w.exit)
		background()
		for j := range w.jobs {
			w.done <- ib.storeBlock(j)
		}
	}()
	return w
}

// start hands a block to the writer; the previous one must be settled.
func (w *writeBehind) start(j blockWrite) {
	w.cur = &j
	w.jobs <- j
}

// finished is ready when the write in flight completes (never if none is):
// the receiver settles it then, without waiting for its next message.
func (w *writeBehind) finished() <-chan error {
	if w.cur == nil {
		return nil
	}
	return w.done
}

// settle waits for the write in flight, if any, and applies its outcome.
func (w *writeBehind) settle(r *receiver) {
	if w.cur != nil {
		w.applied(r, <-w.done)
	}
}

// applied applies the outcome of the write in flight: its block is held
// (if this completed it), or its transfer is aborted.
func (w *writeBehind) applied(r *receiver, err error) {
	j := w.cur
	w.cur = nil
	r.p.bufs.put(j.buf)
	if err != nil {
		r.failIn(j.t, "write block", err)
		return
	}
	failpoint("after-write")
	r.in.mu.Lock()
	if j.held {
		j.t.have.set(int(j.index))
		j.t.notifyLocked()
	}
	j.t.last = time.Now()
	r.in.mu.Unlock()
}

// stop settles the last write and ends the writer goroutine.
func (w *writeBehind) stop(r *receiver) {
	w.settle(r)
	close(w.jobs)
	<-w.exit
}
