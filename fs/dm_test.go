//go:build linux

package fs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// conv returns the conversation with name, its log in the test's folder.
func (m *mounted) conv(name string) Conversation {
	return Conversation{Name: name, Log: filepath.Join(filepath.Dir(m.chatLog), "dm-"+name+".log")}
}

// setMembers makes names the fake's conversations.
func (m *mounted) setMembers(names ...string) {
	var convs []Conversation
	for _, n := range names {
		convs = append(convs, m.conv(n))
	}
	m.fake.setConversations(convs...)
}

func saysTo(name string, lines ...string) []call {
	var out []call
	for _, l := range lines {
		out = append(out, call{"sayto", name + ": " + l})
	}
	return out
}

// listed returns the names listed in the member folder dir (dm or to),
// failing for an entry of the wrong kind (a folder in dm/, a file in to/).
func listed(m *mounted, dir string) ([]string, error) {
	entries, err := os.ReadDir(m.path(dir))
	var names []string
	for _, e := range entries {
		if e.IsDir() != (dir == "to") {
			return nil, fmt.Errorf("%s/%s is listed as the wrong kind", dir, e.Name())
		}
		names = append(names, e.Name())
	}
	return names, err
}

// shows reports nil once the member folder dir (dm or to) lists exactly
// want, each of want can be stat'ed as its kind, and each of gone answers
// ENOENT.
func shows(m *mounted, dir string, want, gone []string) error {
	names, err := listed(m, dir)
	if err != nil {
		return err
	}
	if !slices.Equal(names, want) {
		return fmt.Errorf("ReadDir(%s) = %v, want %v", dir, names, want)
	}
	for _, n := range want {
		if fi, err := os.Stat(m.path(dir + "/" + n)); err != nil || fi.IsDir() != (dir == "to") {
			return fmt.Errorf("Stat(%s/%s) = %v, %v; want a member's entry", dir, n, fi, err)
		}
	}
	for _, n := range gone {
		if _, err := os.Stat(m.path(dir + "/" + n)); !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("Stat(%s/%s): err = %v, want ENOENT", dir, n, err)
		}
	}
	return nil
}

func TestDMList(t *testing.T) {
	m := mountTest(t)
	if err := shows(m, "dm", nil, []string{"bob"}); err != nil {
		t.Fatalf("without members: %v", err)
	}
	m.setMembers("alice", "bob")
	if err := shows(m, "dm", []string{"alice", "bob"}, []string{"carol"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(m.path("dm"))
	if err != nil || fi.Mode() != os.ModeDir|0o700 {
		t.Errorf("Stat(dm) = %v, %v; want mode %v", fi.Mode(), err, os.ModeDir|0o700)
	}
	fi, err = os.Stat(m.path("dm/bob"))
	if err != nil || fi.Mode() != 0o600 {
		t.Errorf("Stat(dm/bob) = %v, %v; want mode %v", fi.Mode(), err, os.FileMode(0o600))
	}
}

func TestDMWrite(t *testing.T) {
	tests := []struct {
		name  string
		write func(path string) error
		want  []string
	}{
		{"one line", func(p string) error { return os.WriteFile(p, []byte("hi\n"), 0o600) }, []string{"hi"}},
		{"partial line sent at close", func(p string) error { return os.WriteFile(p, []byte("x\npartial"), 0o600) }, []string{"x", "partial"}},
		{"line split across writes", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			for _, s := range []string{"hel", "lo\n\nwor", "ld"} {
				if _, err := f.WriteString(s); err != nil {
					return err
				}
			}
			return f.Close()
		}, []string{"hello", "world"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mountTest(t)
			m.setMembers("alice", "bob")
			if err := tc.write(m.path("dm/bob")); err != nil {
				t.Fatal(err)
			}
			// Flush runs inside close(2), so the calls are there already.
			if got, want := m.fake.snapshot(""), saysTo("bob", tc.want...); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Syncer calls = %v, want %v", got, want)
			}
		})
	}
}

func TestDMRead(t *testing.T) {
	// An hour's default cache: only the file's own uncached attributes
	// can show the size growing.
	m := mountWith(t, func(c *Config) { c.cacheTimeout = time.Hour })
	m.setMembers("bob")
	log, p := m.conv("bob").Log, m.path("dm/bob")
	// The attributes the lookup gave must not be kept either: fstat an
	// open file, which no new lookup refreshes, before any read (a read
	// makes the kernel ask for the atime, and the rest with it, anew).
	stat := func() (os.FileInfo, error) { return os.Stat(p) }
	early, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	waitSize(t, early.Stat, 0)
	first := "09:59 bob: first\n"
	if err := appendFile(log, first); err != nil {
		t.Fatal(err)
	}
	waitSize(t, early.Stat, int64(len(first)))
	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	waitSize(t, stat, 0)
	got, err := os.ReadFile(p)
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadFile(dm/bob) without a log = %q, %v; want empty", got, err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Like tail -f: stat the open file until it grows, then read on from
	// where the last read ended.
	var all string
	for i := range 3 {
		line := fmt.Sprintf("10:0%d bob: line %d\n", i, i)
		if err := appendFile(log, line); err != nil {
			t.Fatal(err)
		}
		all += line
		waitSize(t, f.Stat, int64(len(all)))
		got, err := io.ReadAll(f)
		if err != nil || string(got) != line {
			t.Fatalf("read on = %q, %v; want %q", got, err, line)
		}
	}
	waitSize(t, stat, int64(len(all)))
	if got, err := os.ReadFile(p); err != nil || string(got) != all {
		t.Fatalf("ReadFile(dm/bob) = %q, %v; want %q", got, err, all)
	}
	// O_TRUNC and truncate leave the log as it is, as for chat.
	if err := os.Truncate(p, 0); err != nil {
		t.Fatalf("Truncate(dm/bob): %v", err)
	}
	if got, err := os.ReadFile(log); err != nil || string(got) != all {
		t.Errorf("log after truncate = %q, %v; want %q", got, err, all)
	}
	errIs(t, "chmod", os.Chmod(p, 0o644), syscall.EPERM)
}

func TestDMMembersComeAndGo(t *testing.T) {
	// Cache the loopback subtrees for an hour, so that only dm/'s own
	// entry timeout can explain a removed member disappearing.
	m := mountWith(t, func(c *Config) { c.cacheTimeout = time.Hour })
	m.setMembers("bob")
	if err := shows(m, "dm", []string{"bob"}, nil); err != nil {
		t.Fatal(err)
	}
	m.setMembers("bob", "carol")
	err := testutil.WaitFor(2*time.Second, func() error { return shows(m, "dm", []string{"bob", "carol"}, nil) })
	if err != nil {
		t.Fatalf("carol added: %v", err)
	}
	m.setMembers("carol")
	err = testutil.WaitFor(2*time.Second, func() error { return shows(m, "dm", []string{"carol"}, []string{"bob"}) })
	if err != nil {
		t.Fatalf("bob removed: %v", err)
	}
	// Back again, he is there at once (ENOENT is never cached).
	m.setMembers("bob", "carol")
	if err := shows(m, "dm", []string{"bob", "carol"}, nil); err != nil {
		t.Fatalf("bob back: %v", err)
	}
}

func TestDMRefusesChanges(t *testing.T) {
	m := mountTest(t)
	m.setMembers("bob")
	if err := os.WriteFile(m.path("outbox/f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		op   func() error
		want syscall.Errno
	}{
		{"create", func() error { return os.WriteFile(m.path("dm/x"), []byte("hi\n"), 0o600) }, syscall.EPERM},
		{"create exclusive", func() error {
			_, err := os.OpenFile(m.path("dm/bob"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			return err
		}, syscall.EEXIST},
		{"mkdir", func() error { return os.Mkdir(m.path("dm/d"), 0o700) }, syscall.EPERM},
		{"mknod", func() error { return syscall.Mknod(m.path("dm/p"), syscall.S_IFIFO|0o600, 0) }, syscall.EPERM},
		{"symlink", func() error { return os.Symlink("bob", m.path("dm/l")) }, syscall.EPERM},
		{"link in", func() error { return os.Link(m.path("outbox/f"), m.path("dm/f")) }, syscall.EPERM},
		{"unlink", func() error { return syscall.Unlink(m.path("dm/bob")) }, syscall.EPERM},
		{"rename within", func() error { return os.Rename(m.path("dm/bob"), m.path("dm/b2")) }, syscall.EPERM},
		{"rename out", func() error { return os.Rename(m.path("dm/bob"), m.path("outbox/b2")) }, syscall.EPERM},
		// The loopback refuses renames across subtrees before dm/ is asked.
		{"rename in", func() error { return os.Rename(m.path("outbox/f"), m.path("dm/f")) }, syscall.EXDEV},
		{"chmod dm", func() error { return os.Chmod(m.path("dm"), 0o755) }, syscall.EPERM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errIs(t, tc.name, tc.op(), tc.want)
		})
	}
	gone := []string{"x", "d", "p", "l", "f", "b2"}
	if err := shows(m, "dm", []string{"bob"}, gone); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(m.path("outbox/b2")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("Stat(outbox/b2): err = %v, want ENOENT", err)
	}
	if got := m.fake.snapshot("sayto"); len(got) != 0 {
		t.Errorf("SayTo calls = %v, want none", got)
	}
}

func TestDMRemovedWhileOpen(t *testing.T) {
	m := mountTest(t)
	m.setMembers("bob")
	f, err := os.OpenFile(m.path("dm/bob"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("before\npart"); err != nil {
		t.Fatal(err)
	}
	m.setMembers()
	_, err = f.WriteString("ial\n")
	errIs(t, "write after removal", err, syscall.ENOENT)
	if _, err := f.WriteString("unfinished"); err != nil {
		t.Fatalf("buffered write: %v", err)
	}
	errIs(t, "close after removal", f.Close(), syscall.ENOENT)
	if got, want := m.fake.snapshot("sayto"), saysTo("bob", "before"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SayTo calls = %v, want %v", got, want)
	}
}

func TestDMBadNames(t *testing.T) {
	long := strings.Repeat("n", 256)
	bad := []string{"", ".", "..", "a/b", "x\x00y", long}
	names := append([]string{"bob", "bob", "carol"}, bad...)
	var convs []Conversation
	for _, n := range names {
		convs = append(convs, Conversation{Name: n, Log: "/nonexistent/" + n})
	}
	fake := &fakeSyncer{}
	fake.setConversations(convs...)
	var logged int
	log := slog.New(countHandler{slog.DiscardHandler, &logged})
	d := newDM(fake, newErrnos(log), log)
	for range 3 {
		var got []string
		for _, c := range d.conversations() {
			got = append(got, c.Name)
		}
		if want := []string{"bob", "carol"}; !slices.Equal(got, want) {
			t.Fatalf("conversations() = %q, want %q", got, want)
		}
	}
	// Once per bad name, and once for the repeated bob.
	if want := len(bad) + 1; logged != want {
		t.Errorf("log records = %d, want %d", logged, want)
	}

	m := mountTest(t)
	m.fake.setConversations(convs...)
	if err := shows(m, "dm", []string{"bob", "carol"}, nil); err != nil {
		t.Error(err)
	}
}
