//go:build linux

package sync

import (
	"os"
	"path/filepath"
	gosync "sync"
	"testing"

	"golang.org/x/sys/unix"
)

// writeLog records the receiver's block writes and whether each went
// through an O_DIRECT descriptor.
type writeLog struct {
	mu             gosync.Mutex
	direct, cached int
	einval         int
}

// hook wraps writes; fail makes every O_DIRECT write fail with EINVAL.
func (w *writeLog) hook(fail bool) func(f *os.File, d []byte, off int64) (int, error) {
	return func(f *os.File, d []byte, off int64) (int, error) {
		flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
		direct := err == nil && flags&unix.O_DIRECT != 0
		w.mu.Lock()
		defer w.mu.Unlock()
		switch {
		case direct && fail:
			w.einval++
			return 0, &os.PathError{Op: "write", Path: f.Name(), Err: unix.EINVAL}
		case direct:
			w.direct++
		default:
			w.cached++
		}
		return f.WriteAt(d, off)
	}
}

// directSupported reports whether openDirect works in dir.
func directSupported(t *testing.T, dir string) bool {
	p := filepath.Join(dir, ".probe")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(p)
	f := openDirect(p, minBlockSize)
	if f != nil {
		f.Close()
	}
	return f != nil
}

// TestDirectWrites: a large file's whole blocks are written with O_DIRECT
// where the filesystem allows it, its unaligned tail through the page
// cache, and the file arrives intact; where O_DIRECT is refused at the
// first write, every block goes through the page cache instead.
func TestDirectWrites(t *testing.T) {
	for _, fail := range []bool{false, true} {
		name := map[bool]string{false: "direct", true: "einval"}[fail]
		t.Run(name, func(t *testing.T) {
			n := newFakeNet(t)
			a, b := n.addNode("alice", nil), n.addNode("bob", nil)
			var w writeLog
			b.engine().writeAt = w.hook(fail)
			a.start()
			b.start()
			n.connect(a, b)
			data := randBytes(40, directMinSize+100)
			a.put("big.bin", data)
			b.waitFile("inbox/alice/big.bin", data)

			whole := len(data) / minBlockSize // the tail block is 100 bytes
			w.mu.Lock()
			defer w.mu.Unlock()
			want := writeLog{cached: whole + 1}
			switch {
			case fail:
				want = writeLog{cached: whole + 1, einval: 1}
			case directSupported(t, b.root):
				t.Logf("O_DIRECT supported")
				want = writeLog{direct: whole, cached: 1}
			}
			if w.direct != want.direct || w.cached != want.cached || w.einval != want.einval {
				t.Errorf("writes: direct %d, cached %d, einval %d; want %d, %d, %d",
					w.direct, w.cached, w.einval, want.direct, want.cached, want.einval)
			}
		})
	}
}
