package sync

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/zeebo/blake3"
)

// Sparse files: a block of zeros travels as a CHUNK without data. The
// sender learns it from the file system (a hole, hasData) or from the
// bytes it read (allZero); the receiver checks it like any block, against
// zeroSum, and leaves a hole where it goes (inbound.zeroBlock). A 2 GiB
// disk image holding 16 KiB of data then costs 16 KiB on the wire and at
// the receiver instead of 2 GiB.

// zeros is a run of zero bytes to compare and hash blocks against, in
// pieces: a whole 4 MiB block of them would be memory spent on nothing.
var zeros [64 << 10]byte

// allZero reports whether b holds only zero bytes. A block with data
// usually differs in its first bytes, so the check costs little there.
func allZero(b []byte) bool {
	for len(b) > 0 {
		k := min(len(b), len(zeros))
		if !bytes.Equal(b[:k], zeros[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}

// zeroSumCacheLen bounds the cache: a file's blocks have at most two
// lengths (the full block and its tail), and a node moves few files at
// once. A miss costs one hash of the block (a millisecond for 4 MiB).
const zeroSumCacheLen = 8

// zeroSumCache holds the hashes of the zero blocks of recent lengths,
// newest last.
var zeroSumCache struct {
	mu   sync.Mutex
	lens []int
	sums []hash32
}

// zeroSum is blockSum of n zero bytes.
func zeroSum(n int) hash32 {
	c := &zeroSumCache
	c.mu.Lock()
	for i, l := range c.lens {
		if l == n {
			h := c.sums[i]
			c.mu.Unlock()
			return h
		}
	}
	c.mu.Unlock()
	h := hashZeros(n)
	c.mu.Lock()
	if len(c.lens) == zeroSumCacheLen {
		c.lens, c.sums = c.lens[1:], c.sums[1:]
	}
	c.lens, c.sums = append(c.lens, n), append(c.sums, h)
	c.mu.Unlock()
	return h
}

// hashZeros hashes n zero bytes, a piece of zeros at a time.
func hashZeros(n int) hash32 {
	h := blake3.New()
	for n > 0 {
		k := min(n, len(zeros))
		h.Write(zeros[:k])
		n -= k
	}
	var sum hash32
	copy(sum[:], h.Sum(nil))
	return sum
}

// zeroBlock reports whether the manifest says block i is all zeros; never
// while the manifest is unknown (streamed).
func (m *partialMeta) zeroBlock(i int) bool {
	return i < len(m.Blocks) && m.Blocks[i] == zeroSum(blockLen(m.Size, m.BlockSize, uint32(i)))
}

// layoutPartial gives a new partial its full size, all of it a hole, and
// with a manifest reserves the runs of blocks that will hold data
// (preallocate). It returns the blocks left holes: a zero block needs
// nothing written there. A streamed partial reserves nothing yet: its
// zero blocks are not known, and punching them out of a reservation
// later costs more than reserving as data comes (reserveAhead).
func layoutPartial(f *os.File, meta *partialMeta) (bitmap, error) {
	n := meta.blocks()
	holes := newBitmap(n)
	if err := f.Truncate(int64(meta.Size)); err != nil {
		return holes, fmt.Errorf("size partial: %w", err)
	}
	bs := int64(meta.BlockSize)
	for i := 0; i < n; {
		if meta.streamed() || meta.zeroBlock(i) {
			holes.set(i)
			i++
			continue
		}
		end := i + 1
		for end < n && !meta.zeroBlock(end) {
			end++
		}
		off := int64(i) * bs
		reserved, err := preallocate(f, off, min(int64(end)*bs, int64(meta.Size))-off)
		if err != nil {
			return holes, err
		}
		for ; !reserved && i < end; i++ {
			holes.set(i)
		}
		i = end
	}
	return holes, nil
}

// reserveAhead is how much a data block landing in a hole reserves, from
// itself on: enough that a dense streamed file is reserved in large
// extents, little enough that the zero blocks after a short data run
// cost few punches. A punch out of a reservation costs ext4 about 0.1 ms,
// one in a hole next to nothing: receiving 2 GiB with one data block
// (BenchmarkSparseSend) took 0.83 s with the whole file reserved up
// front and then punched, 0.13-0.33 s with this, about as long as
// reserving nothing (0.23 s).
const reserveAhead = 64 << 20

// storeBlock writes one verified block or one piece, on the write-behind
// goroutine: its data (reserving ahead first if it lands in a hole), or for a zero
// block nothing where the partial is still a hole, else a hole punched
// over what the range held (zeros written where the filesystem cannot
// punch).
func (ib *inbound) storeBlock(j blockWrite) error {
	off := int64(j.index)*int64(j.t.meta.BlockSize) + int64(j.off)
	if j.zeros == 0 {
		if err := ib.reserve(j.t, j.index); err != nil {
			return err
		}
		return ib.writeBlock(j.t, j.data, off)
	}
	if ib.isHole(j.t, j.index) {
		return nil
	}
	return ib.zeroRange(j.t.f, off, j.zeros)
}

// reserve prepares block i of t for its data: if it is a hole, it
// preallocates the run of holes from i up to reserveAhead, which are
// holes no more; block i is not one in any case (a write that fails
// half-way leaves no hole).
func (ib *inbound) reserve(t *inTransfer, i uint32) error {
	ib.mu.Lock()
	end := int(i)
	limit := min(t.holes.n, int(i)+max(reserveAhead/int(t.meta.BlockSize), 1))
	for end < limit && t.holes.has(end) {
		end++
	}
	ib.mu.Unlock()
	if end == int(i) {
		return nil
	}
	bs := int64(t.meta.BlockSize)
	reserved, err := preallocate(t.f, int64(i)*bs, min(int64(end)*bs, int64(t.meta.Size))-int64(i)*bs)
	if err != nil {
		return err
	}
	if !reserved {
		end = int(i) + 1
	}
	ib.mu.Lock()
	for b := int(i); b < end; b++ {
		t.holes.clear(b)
	}
	ib.mu.Unlock()
	return nil
}

// zeroRange makes n bytes of f at off read as zeros, freeing them where
// the filesystem can.
func (ib *inbound) zeroRange(f *os.File, off int64, n int) error {
	err := punchHole(f, off, int64(n))
	if !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	for n > 0 {
		k := min(n, len(zeros))
		if _, err := ib.writeAt(f, zeros[:k], off); err != nil {
			return err
		}
		off, n = off+int64(k), n-k
	}
	return nil
}

// isHole reports whether block i of t is still a hole of its fresh partial.
func (ib *inbound) isHole(t *inTransfer, i uint32) bool {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	return t.holes.has(int(i))
}
