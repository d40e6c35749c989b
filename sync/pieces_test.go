package sync

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
	"github.com/meshfs/meshfs/mesh"
)

// Blocks larger than a piece (pieces.go): they travel as 1 MiB CHUNKs and
// are hashed and written piece by piece. A Config.BlockSize of a few MiB
// makes such blocks out of a file of a few MiB; the sparse tests
// (bigfile_unix_test.go) let the block size grow with the file instead.

// pieceModes are the two ways a file with big blocks is offered: with its
// manifest (hashed first, in pieces: sumAt) and streamed (hashed by
// sendPieces as its pieces are sent).
var pieceModes = []struct {
	name string
	edit func(*Config)
}{
	{"hashed first", func(c *Config) { c.BlockSize, c.StreamMinSize = 4<<20, 1<<40 }},
	{"streamed", func(c *Config) { c.BlockSize = 4 << 20 }},
}

// TestPiecesTransfer: a file of 4 MiB blocks arrives equal, each block as
// 4 pieces (the last block, 5 bytes, as one CHUNK), with no CHUNK over a
// piece.
func TestPiecesTransfer(t *testing.T) {
	for _, mode := range pieceModes {
		t.Run(mode.name, func(t *testing.T) {
			n, a, b := pair(t, mode.edit)
			big := watchChunks(n)
			data := randBytes(60, 2*(4<<20)+5)
			a.put("p.bin", data)
			b.waitFile("inbox/alice/p.bin", data)
			if got := n.chunks.Load(); got != 2*4+1 {
				t.Errorf("CHUNKs sent = %d, want 9 (two blocks of 4 pieces, one tail)", got)
			}
			if big.Load() {
				t.Errorf("a CHUNK carried more than %d bytes", pieceSize)
			}
		})
	}
}

// watchChunks reports, once set, that a CHUNK over pieceSize was sent.
func watchChunks(n *fakeNet) *atomic.Bool {
	var big atomic.Bool
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mutate = func(from, to mesh.PeerID, d []byte) []byte {
		if d[0] == byte(kindChunk) && len(d)-chunkHeaderLen > pieceSize {
			big.Store(true)
		}
		return d
	}
	return &big
}

// TestPiecesCorrupt flips a bit in the third piece of block 1: the block
// is dropped (at its last piece, or when a streamed file's manifest comes
// with DONE), asked for again whole, and the file arrives intact.
func TestPiecesCorrupt(t *testing.T) {
	for _, mode := range pieceModes {
		t.Run(mode.name, func(t *testing.T) {
			n, a, b := pair(t, mode.edit)
			data := randBytes(61, 3*(4<<20))
			var flipped atomic.Bool
			n.mu.Lock()
			n.mutate = func(from, to mesh.PeerID, d []byte) []byte {
				m, err := decodeMessage(d)
				if c, ok := m.(*chunkMsg); err == nil && ok && c.Index == 1 && c.Offset == 2<<20 && flipped.CompareAndSwap(false, true) {
					d[chunkHeaderLen+100] ^= 0x10
				}
				return d
			}
			n.mu.Unlock()
			a.put("c.bin", data)
			b.waitFile("inbox/alice/c.bin", data)
			if got := b.engine().Status().ChecksumErrors; got != 1 {
				t.Errorf("ChecksumErrors = %d, want 1", got)
			}
			if got := n.chunks.Load(); got != 3*4+4 {
				t.Errorf("CHUNKs sent = %d, want 16 (12, then block 1's 4 pieces again)", got)
			}
		})
	}
}

// TestPiecesResume: a transfer of 2 MiB blocks is cut after two blocks,
// with the first piece of the third on its way, and the receiver
// restarts. Re-hashing the partial in pieces finds the two blocks held
// and the third not; only the rest is sent again. It also resumes after
// a cut without a restart, from the blocks held in memory.
func TestPiecesResume(t *testing.T) {
	for _, restart := range []bool{true, false} {
		t.Run(fmt.Sprintf("restart %v", restart), func(t *testing.T) {
			const bs = 2 << 20
			n, a, b := pair(t, func(c *Config) { c.BlockSize, c.StreamMinSize = bs, 1<<40 })
			data := randBytes(62, 5*bs+77)
			cut := cutAtPiece(n, a, b, 6, 2*bs)
			a.put("r.bin", data)
			<-cut
			if restart {
				b.closeEngine()
				b.open()
				b.start()
			}
			since := n.heal(a, b)
			b.waitFile("inbox/alice/r.bin", data)
			if resent := since(); resent != 3*2+1 {
				t.Errorf("CHUNKs after the cut = %d, want 7 (blocks 2-4 in pieces, the tail)", resent)
			}
		})
	}
}

// cutAtPiece cuts the link between a and b when CHUNK number at (from 1)
// is on its way, once b holds held bytes of blocks.
func cutAtPiece(n *fakeNet, a, b *fakeNode, at int, held int64) <-chan struct{} {
	return cutWhen(n, a, b, at, func() {
		testutil.WaitFor(effectTimeout, func() error { return receiving(b, held) })
	})
}

// receiving is nil once fn holds done bytes of blocks of a transfer.
func receiving(fn *fakeNode, done int64) error {
	for _, tr := range fn.engine().Status().Transfers {
		if tr.Direction == "receive" && tr.Done == done {
			return nil
		}
	}
	return fmt.Errorf("no transfer with %d bytes held", done)
}

// TestPiecesMemory sends a file of 64 MiB blocks, with data in every
// piece, and samples the heap meanwhile: both engines together (the
// sender, the fake network's queues and the receiver) must stay well
// under one block, where holding a block would take 64 MiB at each end.
func TestPiecesMemory(t *testing.T) {
	const bs = maxBlockSize
	n, a, b := pair(t, func(c *Config) { c.BlockSize = bs })
	var offered atomic.Uint32
	n.mu.Lock()
	n.mutate = func(from, to mesh.PeerID, d []byte) []byte {
		if m, err := decodeMessage(d); err == nil {
			if o, ok := m.(*offerMsg); ok {
				offered.Store(o.BlockSize)
			}
		}
		return d
	}
	n.mu.Unlock()
	src := filepath.Join(a.root, "outbox", "mem.bin")
	writeRandom(t, src, 2*bs+3<<20)
	// The samples should show what is live, not garbage the collector
	// has yet to free: the fake network copies every message.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := samplePeak(t, func() {
		a.engine().OutboxClosed("mem.bin")
		waitPlaced(t, b, "inbox/alice/mem.bin", 2*bs+3<<20)
	})
	waitPlaced(t, a, "sent/mem.bin", 2*bs+3<<20) // moved there once delivered
	sameFile(t, filepath.Join(a.root, "sent", "mem.bin"), filepath.Join(b.root, "inbox", "alice", "mem.bin"))
	if got := offered.Load(); got != bs {
		t.Fatalf("OFFER block size = %d, want %d", got, bs)
	}
	grew := int64(peak) - int64(before.HeapInuse)
	t.Logf("heap in use: %d MiB before, peak %d MiB (+%d MiB) with %d MiB blocks",
		before.HeapInuse>>20, peak>>20, grew>>20, bs>>20)
	if grew > bs/2 {
		t.Errorf("heap grew by %d MiB while moving %d MiB blocks, want under %d MiB", grew>>20, bs>>20, bs>>21)
	}
}

// samplePeak runs f and returns the highest HeapInuse seen every
// millisecond meanwhile.
func samplePeak(t *testing.T, f func()) uint64 {
	t.Helper()
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	return <-done
}

// writeRandom writes size pseudo-random bytes to path, 1 MiB at a time:
// the file never sits in the heap.
func writeRandom(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rand.New(rand.NewPCG(uint64(size), 2))
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		for i := 0; i < len(buf); i += 8 {
			v := r.Uint64()
			for k := range 8 {
				buf[i+k] = byte(v >> (8 * k))
			}
		}
		if _, err := f.Write(buf[:min(int64(len(buf)), size-off)]); err != nil {
			t.Fatal(err)
		}
	}
}

// waitPlaced waits until rel (under fn's tree) exists with size bytes: a
// received file appears by rename, complete.
func waitPlaced(t testing.TB, fn *fakeNode, rel string, size int64) {
	t.Helper()
	p := filepath.Join(fn.root, filepath.FromSlash(rel))
	err := testutil.WaitFor(2*time.Minute, func() error {
		fi, err := os.Stat(p)
		if err == nil && fi.Size() != size {
			err = fmt.Errorf("%s has %d bytes, want %d", rel, fi.Size(), size)
		}
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", fn.name, err)
	}
}

// sameFile fails t unless the files at a and b hold the same bytes, read
// 1 MiB at a time.
func sameFile(t testing.TB, a, b string) {
	t.Helper()
	fa, fb := openRead(t, a), openRead(t, b)
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); ; off += int64(len(ba)) {
		na, erra := fa.ReadAt(ba, off)
		nb, errb := fb.ReadAt(bb, off)
		if na != nb || string(ba[:na]) != string(bb[:nb]) {
			t.Fatalf("%s and %s differ in the MiB at %d", filepath.Base(a), filepath.Base(b), off)
		}
		if erra != nil || errb != nil {
			return
		}
	}
}

// openRead opens path for reading until t ends.
func openRead(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
