package sync

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// sparseBytes is the content of a file of size bytes holding runs.
func sparseBytes(size int64, runs []dataRun) []byte {
	b := make([]byte, size)
	for _, r := range runs {
		copy(b[r.off:], r.data)
	}
	return b
}

// dataBlockBytes is what a sender should put on the wire for data in
// blocks of bs: the length of every block holding a byte other than zero.
func dataBlockBytes(data []byte, bs int) int64 {
	var n int64
	for off := 0; off < len(data); off += bs {
		blk := data[off:min(off+bs, len(data))]
		if slices.ContainsFunc(blk, func(c byte) bool { return c != 0 }) {
			n += int64(len(blk))
		}
	}
	return n
}

// holesKept reports whether dir's filesystem keeps holes: a file of
// 8 MiB with 4 KiB written in its middle must occupy under 1 MiB. It also
// says what it found, for the skip message.
func holesKept(t *testing.T, dir string) (bool, int64) {
	t.Helper()
	p := filepath.Join(dir, ".hole-probe")
	writeSparse(t, p, 8<<20, dataRun{off: 4 << 20, data: make([]byte, 4096)})
	defer os.Remove(p)
	alloc, ok := allocated(t, p)
	return ok && alloc < 1<<20, alloc
}

// checkAllocated fails t if the file at path occupies more than its data
// blocks (plus a little for the filesystem's own bookkeeping), and skips
// t, saying why, where the filesystem does not keep holes.
func checkAllocated(t *testing.T, path string, data int64) {
	t.Helper()
	if ok, probe := holesKept(t, filepath.Dir(path)); !ok {
		t.Skipf("allocation not checked: this filesystem does not keep holes (an 8 MiB hole file occupies %d bytes)", probe)
	}
	alloc, _ := allocated(t, path)
	if alloc > data+16<<10 {
		t.Errorf("%s occupies %d bytes, want at most its %d bytes of data blocks (+16 KiB)", filepath.Base(path), alloc, data)
	}
}

// TestSparseTransfer: a 64 MiB file that is mostly holes, with a data run
// larger than StreamMinSize, a small one in the middle and one at the
// end, arrives equal, the sender puts only its data blocks on the wire,
// and the received file keeps the holes. Offered hashed first and
// streamed.
func TestSparseTransfer(t *testing.T) {
	const size = 64 << 20
	runs := []dataRun{
		{off: 8<<20 + 1000, data: randBytes(1, 5<<20)}, // over StreamMinSize (4 MiB)
		{off: 32<<20 + 123, data: randBytes(2, 5000)},
		{off: size - 3000, data: randBytes(3, 3000)},
	}
	want := sparseBytes(size, runs)
	bs := chooseBlockSize(size, minBlockSize)
	modes := []struct {
		name string
		edit func(*Config)
	}{
		{"hashed first", func(c *Config) { c.StreamMinSize = 2 * size }},
		{"streamed", func(c *Config) { c.StreamMinSize = 4 << 20 }},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			n, a, b := pair(t, mode.edit)
			a.putSparse("disk.img", size, runs...)
			b.waitFile("inbox/alice/disk.img", want)
			wire, data := n.chunkBytes.Load(), dataBlockBytes(want, bs)
			if wire != data {
				t.Errorf("CHUNK data sent = %d bytes, want %d (the data blocks of a %d-byte file)", wire, data, size)
			}
			checkAllocated(t, filepath.Join(b.root, "inbox", "alice", "disk.img"), data)
		})
	}
}

// TestSparseExplicitZeros: a file written with explicit zero bytes, not
// holes, also sends its zero blocks as CHUNKs without data; it arrives
// equal, with holes at the receiver where the zeros were.
func TestSparseExplicitZeros(t *testing.T) {
	const size = 3<<20 + 777
	want := sparseBytes(size, []dataRun{
		{off: 1<<20 + 5, data: randBytes(4, 100)},
		{off: size - 10, data: randBytes(5, 10)},
	})
	for _, mode := range hashModes {
		t.Run(mode.name, func(t *testing.T) {
			n, a, b := pair(t, mode.edit)
			p := filepath.Join(a.root, "outbox", "zeros.bin")
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
			if alloc, ok := allocated(t, p); ok && alloc < size {
				t.Logf("the filesystem stored the written zeros as holes (%d bytes allocated)", alloc)
			}
			a.engine().OutboxClosed("zeros.bin")
			b.waitFile("inbox/alice/zeros.bin", want)
			wire, data := n.chunkBytes.Load(), dataBlockBytes(want, minBlockSize)
			if wire != data {
				t.Errorf("CHUNK data sent = %d bytes, want %d", wire, data)
			}
			checkAllocated(t, filepath.Join(b.root, "inbox", "alice", "zeros.bin"), data)
		})
	}
}

// TestSparseResumeOverOldBytes: a partial whose blocks hold bytes of an
// earlier attempt resumes after a restart; blocks that are now sent as
// zero blocks are zeroed (punched out) over those bytes.
func TestSparseResumeOverOldBytes(t *testing.T) {
	n := newFakeNet(t)
	b := n.addNode("bob", nil)
	b.start()
	ev := newEvil(t, n, "mallory", b)
	const bs = minBlockSize
	want := sparseBytes(4*bs, []dataRun{{off: 0, data: randBytes(6, bs)}, {off: 3 * bs, data: randBytes(7, 10)}})
	m := offerOf(transferID{0x5a}, "resume.img", want)
	ev.sendTo(b, m)
	ev.next() // ACCEPT
	ev.sendTo(b, &chunkMsg{ID: m.ID, Index: 0, Data: want[:bs]})
	ev.sendTo(b, &doneMsg{ID: m.ID})
	if a, ok := ev.next().(*acceptMsg); !ok || a.Have.count() != 1 {
		t.Fatalf("reply = %+v, want ACCEPT holding block 0", a)
	}
	n.cut(ev.fakeNode, b)
	b.closeEngine()
	parts, _ := filepath.Glob(filepath.Join(b.root, "inbox", partialsName, "*.part"))
	if len(parts) != 1 {
		t.Fatalf("partials = %v, want one", parts)
	}
	f, err := os.OpenFile(parts[0], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt(randBytes(8, 2*bs), bs) // old bytes in blocks 1 and 2, zero blocks in the manifest
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	b.open()
	b.start()
	n.connect(ev.fakeNode, b)
	ev.sendTo(b, m)
	a, ok := ev.next().(*acceptMsg)
	if !ok || !a.Have.has(0) || a.Have.count() != 1 {
		t.Fatalf("reply after restart = %+v, want ACCEPT holding block 0 only", a)
	}
	for i := uint32(1); i < 3; i++ {
		ev.sendTo(b, &chunkMsg{ID: m.ID, Index: i}) // zero blocks
	}
	ev.sendTo(b, &chunkMsg{ID: m.ID, Index: 3, Data: want[3*bs:]})
	ev.sendTo(b, &doneMsg{ID: m.ID})
	if r, ok := ev.next().(*ackMsg); !ok {
		t.Fatalf("reply = %+v, want ACK", r)
	}
	b.waitFile("inbox/mallory/resume.img", want)
	checkAllocated(t, filepath.Join(b.root, "inbox", "mallory", "resume.img"), dataBlockBytes(want, bs))
}
