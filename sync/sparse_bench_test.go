package sync

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// dataRun is a run of bytes written into a sparse file.
type dataRun struct {
	off  int64
	data []byte
}

// writeSparse creates path as a hole of size bytes with runs written into
// it, the way `truncate -s` and `dd conv=notrunc seek=` make one.
func writeSparse(t testing.TB, path string, size int64, runs ...dataRun) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		if _, err := f.WriteAt(r.data, r.off); err != nil {
			t.Fatal(err)
		}
	}
}

// putSparse is put for a sparse file.
func (fn *fakeNode) putSparse(rel string, size int64, runs ...dataRun) {
	fn.net.t.Helper()
	writeSparse(fn.net.t, filepath.Join(fn.root, "outbox", filepath.FromSlash(rel)), size, runs...)
	fn.engine().OutboxClosed(rel)
}

// BenchmarkSparseSend sends a 2 GiB file holding 16 KiB of data between two
// engines with the default block size, and reports what went on the wire
// and what the received file occupies. One iteration is seconds; run it
// with -benchtime 1x:
//
//	go test -run '^$' -bench SparseSend -benchtime 1x ./sync/
func BenchmarkSparseSend(b *testing.B) {
	const size = 2 << 30
	for i := range b.N {
		b.StopTimer()
		n, a, bob := pair(b, func(c *Config) { c.BlockSize = DefaultConfig().BlockSize })
		rel := fmt.Sprintf("sparse-%d.img", i)
		runs := []dataRun{{off: size / 2, data: randBytes(uint64(i), 16<<10)}}
		before := n.chunkBytes.Load()
		b.StartTimer()
		a.putSparse(rel, size, runs...)
		got := filepath.Join(bob.root, "inbox", "alice", rel)
		if err := testutil.WaitFor(10*time.Minute, func() error { _, err := os.Stat(got); return err }); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(n.chunkBytes.Load()-before), "wire-B/op")
		if alloc, ok := allocated(b, got); ok {
			b.ReportMetric(float64(alloc), "recv-alloc-B/op")
		}
		n.shutdown()
	}
}
