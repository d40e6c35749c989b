//go:build linux

package fs

import (
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

func toClosed(name, rel string) call  { return call{"toclosed", name + ": " + rel} }
func toRemoved(name, rel string) call { return call{"toremoved", name + ": " + rel} }

// noOutboxCalls fails the test if anything was reported as outbox/'s.
func noOutboxCalls(t *testing.T, m *mounted) {
	t.Helper()
	if got := append(m.fake.snapshot("closed"), m.fake.snapshot("removed")...); len(got) != 0 {
		t.Errorf("outbox calls = %v, want none", got)
	}
}

func TestToList(t *testing.T) {
	m := mountTest(t)
	if fi, err := os.Stat(m.backing("to")); err != nil || !fi.IsDir() {
		t.Fatalf("backing to/ after mount: %v, %v", fi, err)
	}
	if err := shows(m, "to", nil, []string{"bob"}); err != nil {
		t.Fatalf("without members: %v", err)
	}
	m.setMembers("alice", "bob")
	if err := shows(m, "to", []string{"alice", "bob"}, []string{"carol"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"alice", "bob"} {
		fi, err := os.Stat(m.backing("to/" + n))
		if err != nil || fi.Mode() != os.ModeDir|0o755 {
			t.Errorf("backing to/%s = %v, %v; want a folder of mode 0755", n, fi, err)
		}
	}
	if _, err := os.Stat(m.backing("to/carol")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backing to/carol of no member: err = %v, want not exist", err)
	}
}

func TestToMembersComeAndGo(t *testing.T) {
	// Cache the loopback subtrees for an hour, so that only to/'s own
	// entry timeout can explain a removed member disappearing.
	m := mountWith(t, func(c *Config) { c.cacheTimeout = time.Hour })
	m.setMembers("bob", "carol")
	if err := os.WriteFile(m.path("to/bob/f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.setMembers("carol")
	err := testutil.WaitFor(2*time.Second, func() error { return shows(m, "to", []string{"carol"}, []string{"bob"}) })
	if err != nil {
		t.Fatalf("bob removed: %v", err)
	}
	if _, err := os.Stat(m.backing("to/bob/f")); err != nil {
		t.Errorf("bob's backing file after his removal: %v", err)
	}
	m.setMembers("bob", "carol")
	if err := content(m, "to/bob/f", "x"); err != nil {
		t.Fatalf("bob back: %v", err)
	}
}

// TestToClosedOnceAfterClose: a file written into to/bob/ is reported to
// ToClosed with bob's name, once, when its last writable handle is
// released, and never to OutboxClosed.
func TestToClosedOnceAfterClose(t *testing.T) {
	m := mountTest(t)
	m.setMembers("alice", "bob")
	f, err := os.Create(m.path("to/bob/file"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("for bob only")); err != nil {
		t.Fatal(err)
	}
	if got := m.fake.snapshot(""); len(got) != 0 {
		t.Fatalf("Syncer calls before close: %v", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", toClosed("bob", "file"))
	if got, err := os.ReadFile(m.backing("to/bob/file")); err != nil || string(got) != "for bob only" {
		t.Fatalf("backing file = %q, %v", got, err)
	}
	if err := content(m, "to/bob/file", "for bob only"); err != nil {
		t.Fatal(err)
	}
	// A later file's report comes after anything file could still cause.
	if err := os.WriteFile(m.path("to/alice/marker"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", toClosed("bob", "file"), toClosed("alice", "marker"))
}

// TestToTree: folders and what they hold are reported as in outbox/, a
// rename within the folder as a removal and an arrival, and rm as
// removals.
func TestToTree(t *testing.T) {
	m := mountTest(t)
	m.setMembers("bob")
	if err := os.MkdirAll(m.path("to/bob/d/e"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.path("to/bob/d/e/f"), []byte("nested"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("e/f", m.path("to/bob/d/link")); err != nil {
		t.Fatal(err)
	}
	made := []call{toClosed("bob", "d"), toClosed("bob", "d/e"), toClosed("bob", "d/e/f"), toClosed("bob", "d/link")}
	m.fake.waitCallSet(t, "", made...) // f's Release may come after the link
	if err := os.Rename(m.path("to/bob/d"), m.path("to/bob/d2")); err != nil {
		t.Fatal(err)
	}
	renamed := append(made, toRemoved("bob", "d"))
	m.fake.waitCallSet(t, "", append(renamed, toClosed("bob", "d2/e/f"), toClosed("bob", "d2/link"))...)
	if err := os.RemoveAll(m.path("to/bob/d2")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCallSet(t, "toremoved", toRemoved("bob", "d"), toRemoved("bob", "d2/e/f"),
		toRemoved("bob", "d2/link"), toRemoved("bob", "d2/e"), toRemoved("bob", "d2"))
	noOutboxCalls(t, m)
}

func TestToRemove(t *testing.T) {
	m := mountTest(t)
	m.setMembers("bob")
	if err := os.WriteFile(m.path("to/bob/f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", toClosed("bob", "f"))
	if err := os.Remove(m.path("to/bob/f")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", toClosed("bob", "f"), toRemoved("bob", "f"))
	noOutboxCalls(t, m)
}

// TestToCrossRename: renames and hard links between outbox/ and a
// member's folder, or between two members' folders, fail with EXDEV, so
// mv copies; nothing moves and nothing is reported.
func TestToCrossRename(t *testing.T) {
	m := mountTest(t)
	m.setMembers("bob", "carol")
	if err := shows(m, "to", []string{"bob", "carol"}, nil); err != nil { // makes the backing folders
		t.Fatal(err)
	}
	for _, p := range []string{"outbox/o", "to/bob/b", "sent/s"} {
		if err := os.WriteFile(m.backing(p), []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		op       func(from, to string) error
		from, to string
	}{
		{"rename outbox -> to/bob", os.Rename, "outbox/o", "to/bob/o"},
		{"rename to/bob -> outbox", os.Rename, "to/bob/b", "outbox/b"},
		{"rename to/bob -> to/carol", os.Rename, "to/bob/b", "to/carol/b"},
		{"rename sent -> to/bob", os.Rename, "sent/s", "to/bob/s"},
		{"link outbox -> to/bob", os.Link, "outbox/o", "to/bob/o"},
		{"link to/bob -> to/carol", os.Link, "to/bob/b", "to/carol/b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errIs(t, tc.name, tc.op(m.path(tc.from), m.path(tc.to)), syscall.EXDEV)
			if err := missing(m, tc.to); err != nil {
				t.Error(err)
			}
		})
	}
	if err := errors.Join(content(m, "outbox/o", "outbox/o"), content(m, "to/bob/b", "to/bob/b")); err != nil {
		t.Error(err)
	}
	if got := m.fake.snapshot(""); len(got) != 0 {
		t.Errorf("Syncer calls = %v, want none", got)
	}
}

// TestToRefusesChanges: to/ itself holds only the members' folders.
func TestToRefusesChanges(t *testing.T) {
	m := mountTest(t)
	m.setMembers("bob")
	if err := os.WriteFile(m.path("outbox/f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", closed("f")) // its release comes after close returns
	tests := []struct {
		name string
		op   func() error
		want syscall.Errno
	}{
		{"create", func() error { return os.WriteFile(m.path("to/x"), []byte("hi\n"), 0o600) }, syscall.EPERM},
		{"mkdir", func() error { return os.Mkdir(m.path("to/carol"), 0o755) }, syscall.EPERM},
		{"mkdir existing", func() error { return os.Mkdir(m.path("to/bob"), 0o755) }, syscall.EEXIST},
		{"mknod", func() error { return syscall.Mknod(m.path("to/p"), syscall.S_IFIFO|0o600, 0) }, syscall.EPERM},
		{"symlink", func() error { return os.Symlink("bob", m.path("to/l")) }, syscall.EPERM},
		{"link in", func() error { return os.Link(m.path("outbox/f"), m.path("to/f")) }, syscall.EPERM},
		{"rmdir", func() error { return syscall.Rmdir(m.path("to/bob")) }, syscall.EPERM},
		{"unlink a folder", func() error { return syscall.Unlink(m.path("to/bob")) }, syscall.EISDIR},
		{"rename within", func() error { return os.Rename(m.path("to/bob"), m.path("to/b2")) }, syscall.EPERM},
		{"rename out", func() error { return os.Rename(m.path("to/bob"), m.path("outbox/b2")) }, syscall.EPERM},
		// As into the top folder, the source's subtree refuses first.
		{"rename in", func() error { return os.Rename(m.path("outbox/f"), m.path("to/f")) }, syscall.EXDEV},
		{"chmod to", func() error { return os.Chmod(m.path("to"), 0o755) }, syscall.EPERM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errIs(t, tc.name, tc.op(), tc.want)
		})
	}
	if err := shows(m, "to", []string{"bob"}, []string{"x", "carol", "p", "l", "f", "b2"}); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(m.backing("to/carol")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backing to/carol: err = %v, want not exist", err)
	}
	if got := m.fake.snapshot(""); !slices.Equal(got, []call{closed("f")}) {
		t.Errorf("Syncer calls = %v, want only outbox/f's", got)
	}
}

// TestToMemberRemovedWhileOpen: a file still open when its member leaves
// is reported with the old name at its release; the engine decides what
// becomes of it.
func TestToMemberRemovedWhileOpen(t *testing.T) {
	m := mountTest(t)
	m.setMembers("bob", "carol")
	f, err := os.Create(m.path("to/bob/late"))
	if err != nil {
		t.Fatal(err)
	}
	m.setMembers("carol")
	err = testutil.WaitFor(2*time.Second, func() error { return shows(m, "to", []string{"carol"}, []string{"bob"}) })
	if err != nil {
		f.Close()
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("written after bob left")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", toClosed("bob", "late"))
	if got, err := os.ReadFile(m.backing("to/bob/late")); err != nil || string(got) != "written after bob left" {
		t.Errorf("backing file = %q, %v", got, err)
	}
}

// TestToBadNames: to/ skips the names dm/ skips.
func TestToBadNames(t *testing.T) {
	m := mountTest(t)
	var convs []Conversation
	for _, n := range []string{"bob", "bob", "carol", "", ".", "..", "a/b", "x\x00y", strings.Repeat("n", 256)} {
		convs = append(convs, Conversation{Name: n, Log: "/nonexistent/" + n})
	}
	m.fake.setConversations(convs...)
	if err := shows(m, "to", []string{"bob", "carol"}, nil); err != nil {
		t.Error(err)
	}
	entries, err := os.ReadDir(m.backing("to"))
	if err != nil {
		t.Fatal(err)
	}
	var made []string
	for _, e := range entries {
		made = append(made, e.Name())
	}
	if want := []string{"bob", "carol"}; !slices.Equal(made, want) {
		t.Errorf("backing to/ holds %q, want %q", made, want)
	}
}
