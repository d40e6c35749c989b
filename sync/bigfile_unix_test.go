//go:build linux || darwin

package sync

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/meshfs/meshfs/mesh"
)

// TestSparseBigFiles: a 5 GiB and a 64 GiB sparse file, each with a few
// MiB of random data at its start, across a block boundary, in its middle
// and up to its last byte, arrive equal and sparse, in the block size
// their size calls for: 1 MiB for 5 GiB, 4 MiB for 64 GiB (16384 blocks,
// each sent in 4 pieces when it holds data). Their holes cost nothing to
// send or write, so the test is cheap; it compares the files where either
// holds data (SEEK_DATA), which is all that can differ.
func TestSparseBigFiles(t *testing.T) {
	tests := []struct {
		name string
		size int64
		bs   uint32
	}{
		{"5 GiB", 5 << 30, 1 << 20},
		{"64 GiB", 64 << 30, 4 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newFakeNet(t)
			edit := func(c *Config) { c.BlockSize = DefaultConfig().BlockSize }
			a, b := n.addNode("alice", edit), n.addNode("bob", edit)
			// The free-space check counts holes: pretend the disk is big.
			b.engine().freeSpace = func(string) (uint64, uint64, error) { return 1 << 40, 2 << 40, nil }
			a.start()
			b.start()
			offered := watchOfferBlockSize(n)
			n.connect(a, b)
			bs := int64(tc.bs)
			runs := []dataRun{
				{0, randBytes(70, 3<<20)},
				{5*bs - 300<<10, randBytes(71, 1<<20)}, // across the boundary of blocks 4 and 5
				{tc.size/2 + 12345, randBytes(72, 2<<20+7)},
				{tc.size - 1<<20 - 99, randBytes(73, 1<<20+99)}, // to the last byte
			}
			writeSparse(t, filepath.Join(a.root, "outbox", "big.img"), tc.size, runs...)
			a.engine().OutboxClosed("big.img")
			waitPlaced(t, b, "inbox/alice/big.img", tc.size)
			waitPlaced(t, a, "sent/big.img", tc.size) // moved there once delivered
			if got := offered.Load(); got != tc.bs {
				t.Errorf("OFFER block size = %d, want %d", got, tc.bs)
			}
			dst := filepath.Join(b.root, "inbox", "alice", "big.img")
			sameSparse(t, filepath.Join(a.root, "sent", "big.img"), dst)
			checkAllocated(t, dst, runBlockBytes(tc.size, bs, runs))
		})
	}
}

// watchOfferBlockSize records the block size of the last OFFER sent.
func watchOfferBlockSize(n *fakeNet) *atomic.Uint32 {
	var bs atomic.Uint32
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mutate = func(from, to mesh.PeerID, d []byte) []byte {
		if d[0] == byte(kindOffer) {
			if m, err := decodeMessage(d); err == nil {
				bs.Store(m.(*offerMsg).BlockSize)
			}
		}
		return d
	}
	return &bs
}

// runBlockBytes is the length of the blocks of bs that runs touch: what a
// receiver of a file of size holding them writes.
func runBlockBytes(size, bs int64, runs []dataRun) int64 {
	var blocks []int64
	for _, r := range runs {
		for i := r.off / bs; i <= (r.off+int64(len(r.data))-1)/bs; i++ {
			blocks = append(blocks, i)
		}
	}
	slices.Sort(blocks)
	var n int64
	for _, i := range slices.Compact(blocks) {
		n += min(bs, size-i*bs)
	}
	return n
}

// sameSparse fails t unless the files at a and b are equal: the same size,
// and the same bytes wherever either holds data. Elsewhere both are holes,
// which read as zeros.
func sameSparse(t *testing.T, a, b string) {
	t.Helper()
	fa, fb := openRead(t, a), openRead(t, b)
	sa, sb := fileSize(t, a), fileSize(t, b)
	if sa != sb {
		t.Fatalf("sizes %d and %d", sa, sb)
	}
	ext := mergeExtents(append(dataExtents(t, a), dataExtents(t, b)...))
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	var compared int64
	for _, e := range ext {
		for off := e[0]; off < e[1]; off += int64(len(ba)) {
			k := min(int64(len(ba)), e[1]-off)
			if _, err := fa.ReadAt(ba[:k], off); err != nil {
				t.Fatal(err)
			}
			if _, err := fb.ReadAt(bb[:k], off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ba[:k], bb[:k]) {
				t.Fatalf("%s differs from the sender's file in the MiB at %d", filepath.Base(b), off)
			}
			compared += k
		}
	}
	t.Logf("%d of %d bytes hold data at either end, all equal", compared, sa)
}

// dataExtents lists the [start, end) ranges of the file at path that hold
// data (SEEK_DATA, SEEK_HOLE).
func dataExtents(t *testing.T, path string) [][2]int64 {
	t.Helper()
	f, size := openRead(t, path), fileSize(t, path)
	fd := int(f.Fd())
	var out [][2]int64
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			t.Fatalf("SEEK_DATA %s: %v", path, err)
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			t.Fatalf("SEEK_HOLE %s: %v", path, err)
		}
		out = append(out, [2]int64{start, end})
		off = end
	}
	return out
}

// mergeExtents sorts ranges and merges those that overlap or touch.
func mergeExtents(ext [][2]int64) [][2]int64 {
	slices.SortFunc(ext, func(a, b [2]int64) int { return int(min(max(a[0]-b[0], -1), 1)) })
	var out [][2]int64
	for _, e := range ext {
		if k := len(out) - 1; k >= 0 && e[0] <= out[k][1] {
			out[k][1] = max(out[k][1], e[1])
			continue
		}
		out = append(out, e)
	}
	return out
}

// fileSize is the size of the file at path.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Size
}
