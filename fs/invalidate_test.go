//go:build linux

package fs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// cachedFor is the entry and attribute timeout of the invalidation tests:
// so long that only an invalidation can explain a fresh view within the
// tests' few seconds.
const cachedFor = time.Hour

// past is an mtime the tests give backing folders, so any change to it
// shows.
var past = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// TestChanged checks each kind of change sync makes behind the kernel's
// back: the kernel first keeps showing the old state (it caches it for an
// hour here), and after Changed it shows the new one within seconds.
func TestChanged(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string // backing files before the change
		look    []string          // looked up through the mount, so the kernel caches them
		change  func(m *mounted) error
		stale   func(m *mounted) error // nil while the kernel shows the old state
		changed []string               // the Changed calls
		fresh   func(m *mounted) error // nil once the mount shows the change
	}{
		{
			name:    "file removed",
			files:   map[string]string{"inbox/alice/r.txt": "report"},
			look:    []string{"inbox/alice/r.txt"},
			change:  func(m *mounted) error { return os.Remove(m.backing("inbox/alice/r.txt")) },
			stale:   func(m *mounted) error { return exists(m, "inbox/alice/r.txt") },
			changed: []string{"inbox/alice/r.txt"},
			fresh:   func(m *mounted) error { return missing(m, "inbox/alice/r.txt") },
		},
		{
			name:   "delivered to sent",
			files:  map[string]string{"outbox/docs/a.txt": "a"},
			look:   []string{"outbox/docs/a.txt"},
			change: deliver("docs/a.txt"),
			stale:  func(m *mounted) error { return exists(m, "outbox/docs/a.txt") },
			// the order sync reports them in: file, destination, emptied folder
			changed: []string{"outbox/docs/a.txt", "sent/docs/a.txt", "outbox/docs"},
			fresh: func(m *mounted) error {
				return errors.Join(missing(m, "outbox/docs"), content(m, "sent/docs/a.txt", "a"))
			},
		},
		{
			name:    "file replaced",
			files:   map[string]string{"sent/f": "old"},
			look:    []string{"sent/f"},
			change:  replace("sent/f", "newer content"),
			stale:   func(m *mounted) error { return size(m, "sent/f", 3) },
			changed: []string{"sent/f"},
			fresh:   func(m *mounted) error { return size(m, "sent/f", len("newer content")) },
		},
		{
			name:    "file rewritten",
			files:   map[string]string{"inbox/alice/w.txt": "abc"},
			look:    []string{"inbox/alice/w.txt"},
			change:  func(m *mounted) error { return os.WriteFile(m.backing("inbox/alice/w.txt"), []byte("abcdefgh"), 0o600) },
			stale:   func(m *mounted) error { return size(m, "inbox/alice/w.txt", 3) },
			changed: []string{"inbox/alice/w.txt"},
			fresh:   func(m *mounted) error { return size(m, "inbox/alice/w.txt", 8) },
		},
		{
			name:    "file arrived",
			files:   map[string]string{"inbox/alice/old": "x"},
			look:    []string{"inbox/alice"},
			change:  func(m *mounted) error { return os.WriteFile(m.backing("inbox/alice/new"), []byte("y"), 0o600) },
			stale:   func(m *mounted) error { return mtime(m, "inbox/alice", past) },
			changed: []string{"inbox/alice/new"},
			fresh: func(m *mounted) error {
				if mtime(m, "inbox/alice", past) == nil {
					return errors.New("inbox/alice still has its old mtime")
				}
				return content(m, "inbox/alice/new", "y")
			},
		},
		{
			name:    "folder removed",
			files:   map[string]string{"inbox/bob/sub/x": "x"},
			look:    []string{"inbox/bob/sub/x"},
			change:  func(m *mounted) error { return os.RemoveAll(m.backing("inbox/bob")) },
			stale:   func(m *mounted) error { return exists(m, "inbox/bob/sub/x") },
			changed: []string{"inbox/bob"},
			fresh:   func(m *mounted) error { return missing(m, "inbox/bob") },
		},
		{
			// What a full queue falls back to: the whole subtree.
			name:  "subtree top",
			files: map[string]string{"inbox/alice/1": "1", "inbox/bob/2": "2", "inbox/bob/3": "3"},
			look:  []string{"inbox/alice/1", "inbox/bob/2", "inbox/bob/3"},
			change: func(m *mounted) error {
				return errors.Join(os.Remove(m.backing("inbox/alice/1")), os.Remove(m.backing("inbox/bob/2")),
					os.WriteFile(m.backing("inbox/bob/3"), []byte("three"), 0o600))
			},
			stale: func(m *mounted) error {
				return errors.Join(exists(m, "inbox/alice/1"), exists(m, "inbox/bob/2"), size(m, "inbox/bob/3", 1))
			},
			changed: []string{"inbox"},
			fresh: func(m *mounted) error {
				return errors.Join(missing(m, "inbox/alice/1"), missing(m, "inbox/bob/2"), size(m, "inbox/bob/3", 5))
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mountWith(t, func(c *Config) { c.cacheTimeout = cachedFor })
			writeBacking(t, m, tc.files)
			for _, p := range tc.look {
				if _, err := os.Stat(m.path(p)); err != nil {
					t.Fatal(err)
				}
			}
			if err := tc.change(m); err != nil {
				t.Fatal(err)
			}
			// Without Changed the kernel keeps the old state: this is what
			// makes the test able to fail.
			if err := tc.stale(m); err != nil {
				t.Fatalf("before Changed, the kernel's cache should still show the old state: %v", err)
			}
			for _, p := range tc.changed {
				m.srv.Changed(p)
			}
			if err := testutil.WaitFor(5*time.Second, func() error { return tc.fresh(m) }); err != nil {
				t.Fatalf("after Changed: %v", err)
			}
		})
	}
}

// TestChangedBurst reports more changes at once than the queue holds,
// while other goroutines use the mount: Changed never blocks, and every
// change takes effect, folded or not.
func TestChangedBurst(t *testing.T) {
	m := mountWith(t, func(c *Config) { c.cacheTimeout = cachedFor })
	const n = 50
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("inbox/alice/f%d", i)] = "x"
	}
	writeBacking(t, m, files)
	for p := range files {
		if err := exists(m, p); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(m.backing(p)); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				os.ReadDir(m.path("inbox/alice"))
				os.Stat(m.path("inbox/alice/f0"))
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := range 2 * maxChanges {
		m.srv.Changed(fmt.Sprintf("inbox/alice/nothing%d", i))
	}
	for p := range files {
		m.srv.Changed(p)
	}
	err := testutil.WaitFor(5*time.Second, func() error {
		var errs []error
		for p := range files {
			errs = append(errs, missing(m, p))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBackingIno checks that the invalidater recognises a file go-fuse
// knows as the same backing file, in each subtree; otherwise every change
// would be handled as a replacement.
func TestBackingIno(t *testing.T) {
	m := mountTest(t)
	files := map[string]string{"outbox/a": "a", "sent/d/b": "b", "inbox/alice/c": "c"}
	writeBacking(t, m, files)
	for p := range files {
		if err := exists(m, p); err != nil {
			t.Fatal(err)
		}
		dir, _, node := m.srv.inval.resolve(p)
		if node == nil {
			t.Fatalf("%s: go-fuse does not know it after a lookup", p)
		}
		if got := m.srv.inval.backingState(dir, node, p); got != same {
			t.Errorf("%s: backing state %d, want same (%d)", p, got, same)
		}
	}
}

// TestChangedIgnored checks that Changed ignores paths it cannot act on,
// a nil Server, and a Server already unmounted, without blocking.
func TestChangedIgnored(t *testing.T) {
	m := mountTest(t)
	for _, p := range []string{"", "/inbox/a", "../inbox/a", "inbox/../chat", "chat", "peers", "other/x"} {
		m.srv.Changed(p)
	}
	var nilServer *Server
	nilServer.Changed("inbox/a")
	if err := m.srv.Unmount(); err != nil {
		t.Fatal(err)
	}
	m.srv.Changed("inbox/a")
}

func TestTreePath(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"inbox/alice/r.pdf", "inbox/alice/r.pdf", true},
		{"outbox/docs/", "outbox/docs", true},
		{"sent//a/./b", "sent/a/b", true},
		{"inbox", "inbox", true},
		{"inbox/../outbox/a", "outbox/a", true},
		{"to/bob/x", "to/bob/x", true},
		{"to", "to", true},
		{"tos/bob", "", false},
		{"", "", false},
		{"/inbox/a", "", false},
		{"../inbox", "", false},
		{"inbox/../../x", "", false},
		{"chat", "", false},
		{"inboxes/a", "", false},
	}
	for _, tc := range tests {
		got, ok := treePath(tc.in)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("treePath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestChangeSet(t *testing.T) {
	t.Run("covered", func(t *testing.T) {
		c := newChangeSet(8)
		for _, p := range []string{"inbox/a/b", "inbox/a", "inbox/a/c", "inbox/a", "sent/x", "inbox/ab"} {
			c.add(p)
		}
		// inbox/a/b came before its folder and stays: it is only done twice.
		want := []string{"sent/x", "inbox/ab", "inbox/a/b", "inbox/a"}
		if got := c.take(); !slices.Equal(got, want) {
			t.Errorf("take = %v, want %v", got, want)
		}
		if got := c.take(); len(got) != 0 {
			t.Errorf("second take = %v, want nothing", got)
		}
	})
	t.Run("children first", func(t *testing.T) {
		c := newChangeSet(8)
		for _, p := range []string{"outbox/docs", "outbox/docs-old/x", "outbox/docs/a.txt"} {
			c.add(p)
		}
		got := c.take()
		if slices.Index(got, "outbox/docs/a.txt") > slices.Index(got, "outbox/docs") {
			t.Errorf("take = %v: the file must come before its folder", got)
		}
	})
	t.Run("full", func(t *testing.T) {
		const max = 16
		c := newChangeSet(max)
		var all []string
		for i := range 10 * max {
			p := fmt.Sprintf("%s/peer%d/f%d", subtrees[i%len(subtrees)], i%5, i)
			all = append(all, p)
			c.add(p)
			if n := len(c.paths); n > max+len(subtrees) {
				t.Fatalf("after %d adds the set holds %d paths, want at most %d", i+1, n, max+len(subtrees))
			}
		}
		got := c.take()
		for _, p := range all {
			if !slices.ContainsFunc(got, func(q string) bool { return p == q || strings.HasPrefix(p, q+"/") }) {
				t.Errorf("%s is lost: not covered by any of %v", p, got)
			}
		}
	})
}

// writeBacking creates files (path -> content) in the backing tree and
// gives their folders an old mtime.
func writeBacking(t *testing.T, m *mounted, files map[string]string) {
	t.Helper()
	for p, data := range files {
		if err := os.MkdirAll(filepath.Dir(m.backing(p)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(m.backing(p), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for p := range files {
		for d := filepath.Dir(p); d != "."; d = filepath.Dir(d) {
			if err := os.Chtimes(m.backing(d), past, past); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// deliver moves outbox file rel to sent/ and removes its emptied outbox
// folders, in the backing tree, as sync does once every member has it.
func deliver(rel string) func(m *mounted) error {
	return func(m *mounted) error {
		dst := m.backing(filepath.Join("sent", rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(m.backing(filepath.Join("outbox", rel)), dst); err != nil {
			return err
		}
		return os.Remove(filepath.Dir(m.backing(filepath.Join("outbox", rel))))
	}
}

// replace puts a new file with data at rel in the backing tree.
func replace(rel, data string) func(m *mounted) error {
	return func(m *mounted) error {
		tmp := m.backing(rel + ".new")
		if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
			return err
		}
		return os.Rename(tmp, m.backing(rel))
	}
}

// exists, missing, size, mtime and content check rel through the mount.

func exists(m *mounted, rel string) error {
	_, err := os.Stat(m.path(rel))
	return err
}

func missing(m *mounted, rel string) error {
	if _, err := os.Stat(m.path(rel)); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stat %s: %v, want it gone", rel, err)
	}
	return nil
}

func size(m *mounted, rel string, want int) error {
	fi, err := os.Stat(m.path(rel))
	if err != nil {
		return err
	}
	if fi.Size() != int64(want) {
		return fmt.Errorf("%s has size %d, want %d", rel, fi.Size(), want)
	}
	return nil
}

func mtime(m *mounted, rel string, want time.Time) error {
	fi, err := os.Stat(m.path(rel))
	if err != nil {
		return err
	}
	if !fi.ModTime().Equal(want) {
		return fmt.Errorf("%s has mtime %v, want %v", rel, fi.ModTime(), want)
	}
	return nil
}

func content(m *mounted, rel, want string) error {
	got, err := os.ReadFile(m.path(rel))
	if err != nil {
		return err
	}
	if string(got) != want {
		return fmt.Errorf("%s holds %q, want %q", rel, got, want)
	}
	return nil
}
