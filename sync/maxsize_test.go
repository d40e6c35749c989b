package sync

import (
	"testing"
)

// TestMaxFileSizeDefault: by default a node takes files up to the
// protocol's largest, 1 TiB, and what refuses one is the free space it
// would need (nospace, retried), not a fixed limit (toobig, final). An
// explicit limit still refuses a larger file as too big, and a limit
// over 1 TiB is a configuration error.
func TestMaxFileSizeDefault(t *testing.T) {
	if got := DefaultConfig().MaxFileSize; got != 1<<40 {
		t.Errorf("DefaultConfig().MaxFileSize = %d, want 1 TiB", got)
	}
	if _, err := New(Config{Root: t.TempDir(), StateDir: t.TempDir(), MaxFileSize: 2 << 40}); err == nil {
		t.Errorf("New(MaxFileSize 2 TiB) = nil error, want one")
	}
	tests := []struct {
		name  string
		limit int64  // Config.MaxFileSize, 0 for the default
		free  uint64 // bytes free of 2 TiB
		size  uint64
		want  rejectCode // 0: ACCEPT
	}{
		{"1 TiB fits", 0, 1200 << 30, 1 << 40, 0},
		{"600 GiB on 500 GiB free", 0, 500 << 30, 600 << 30, rejectNoSpace},
		{"over an explicit limit", 8 << 30, 1200 << 30, 9 << 30, rejectTooBig},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := newFakeNet(t)
			b := n.addNode("bob", func(c *Config) { c.MaxFileSize = tc.limit })
			b.engine().freeSpace = func(string) (uint64, uint64, error) { return tc.free, 2 << 40, nil }
			b.start()
			ev := newEvil(t, n, "mallory", b)
			bs := chooseBlockSize(int64(tc.size), DefaultConfig().BlockSize)
			m := &offerMsg{ID: transferID{0x5e, byte(i)}, Path: "big.img", Size: tc.size, BlockSize: uint32(bs), Mode: 0o644}
			ev.sendTo(b, m)
			switch r := ev.next().(type) {
			case *acceptMsg:
				if tc.want != 0 {
					t.Errorf("%s: ACCEPT, want REJECT %s", tc.name, tc.want)
				}
			case *rejectMsg:
				if r.Code != tc.want {
					t.Errorf("%s: REJECT %s (%s), want %v", tc.name, r.Code, r.Reason, tc.want)
				}
			default:
				t.Errorf("%s: reply %T", tc.name, r)
			}
		})
	}
}
