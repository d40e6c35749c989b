//go:build linux

package fs

import (
	"errors"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// The outbox side of a member's folder: delivery attributes, writers, and
// changes the engine makes behind the kernel's back.

// TestToDeliveryXattrs: user.meshfs.* of a file in to/bob/ come from
// ToDelivery and ToUnsentReason for bob, never from outbox/'s Delivery.
func TestToDeliveryXattrs(t *testing.T) {
	m := mountTest(t)
	m.setMembers("bob")
	m.fake.setDelivery("a.txt", map[string]string{"carol": "verified"}) // outbox/'s, not to be used
	m.fake.setToDelivery("bob", "a.txt", map[string]string{"bob": "sending 43%"})
	m.fake.setToUnsent("bob", "big.img", "too big: 5.0 GiB, limit 4.0 GiB (--max-file-size)")
	for _, name := range []string{"a.txt", "b.txt", "big.img"} {
		if err := os.WriteFile(m.path("to/bob/"+name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m.fake.waitCallSet(t, "", toClosed("bob", "a.txt"), toClosed("bob", "b.txt"), toClosed("bob", "big.img"))
	a := m.path("to/bob/a.txt")
	if got, want := listXattr(t, a), []string{"user.meshfs.bob", "user.meshfs.state"}; !slices.Equal(got, want) {
		t.Errorf("list = %q, want %q", got, want)
	}
	tests := []struct {
		name, path, attr, want string
		err                    error
	}{
		{"member", a, "user.meshfs.bob", "sending 43%", nil},
		{"summary", a, "user.meshfs.state", "0 of 1 verified", nil},
		{"outbox's member", a, "user.meshfs.carol", "", syscall.ENODATA},
		{"not queued", m.path("to/bob/b.txt"), "user.meshfs.state", "not queued", nil},
		{"not sent, and why", m.path("to/bob/big.img"), "user.meshfs.state", "too big: 5.0 GiB, limit 4.0 GiB (--max-file-size)", nil},
		{"member's folder has no state", m.path("to/bob"), "user.meshfs.state", "", syscall.ENODATA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := getXattr(tc.path, tc.attr)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("getxattr %s = %q, %v; want %q, %v", tc.attr, got, err, tc.want, tc.err)
			}
		})
	}
	f, err := os.OpenFile(a, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := getXattr(a, xattrState); got != stateWriting || err != nil {
		t.Errorf("state while open = %q, %v; want %q", got, err, stateWriting)
	}
	if _, err := getXattr(m.backing("to/bob/a.txt"), xattrIncomplete); err != nil {
		t.Errorf("backing mark while open: %v", err)
	}
}

// TestToWriting: Server.WritingTo says whether a file at or below a path
// of a member's folder is open for writing through the mount.
func TestToWriting(t *testing.T) {
	m := mountTest(t)
	m.setMembers("bob", "carol")
	if err := os.MkdirAll(m.path("to/bob/repo/objects"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(m.path("to/bob/repo/objects/tmp_pack_1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, rel string
		want      bool
	}{
		{"bob", "repo", true},
		{"bob", "repo/objects", true},
		{"bob", "re", false},
		{"carol", "repo", false},
		{"dave", "repo", false},
	}
	for _, tc := range tests {
		if got := m.srv.WritingTo(tc.name, tc.rel); got != tc.want {
			t.Errorf("WritingTo(%q, %q) = %v with the pack open, want %v", tc.name, tc.rel, got, tc.want)
		}
	}
	if m.srv.Writing("repo") {
		t.Errorf("Writing(%q) = true for a file in to/bob/, want false", "repo")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	err = testutil.WaitFor(5*time.Second, func() error { // the release comes after close returns
		if m.srv.WritingTo("bob", "repo") {
			return errors.New("to/bob/repo still has a writer")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var nilServer *Server
	if nilServer.WritingTo("bob", "") {
		t.Error("WritingTo on a nil Server = true")
	}
}

// TestToChanged: what the engine changes in a member's folder behind the
// kernel's back (moving a delivered file away) shows through the mount
// once reported with Changed, though the kernel caches it for an hour.
func TestToChanged(t *testing.T) {
	tests := []struct {
		name    string
		change  func(m *mounted) error
		stale   func(m *mounted) error
		changed string
		fresh   func(m *mounted) error
	}{
		{
			name:    "file moved away",
			change:  func(m *mounted) error { return os.Remove(m.backing("to/bob/docs/a.txt")) },
			stale:   func(m *mounted) error { return exists(m, "to/bob/docs/a.txt") },
			changed: "to/bob/docs/a.txt",
			fresh:   func(m *mounted) error { return missing(m, "to/bob/docs/a.txt") },
		},
		{
			name:    "file rewritten",
			change:  replace("to/bob/docs/a.txt", "newer content"),
			stale:   func(m *mounted) error { return size(m, "to/bob/docs/a.txt", 1) },
			changed: "to/bob/docs/a.txt",
			fresh:   func(m *mounted) error { return size(m, "to/bob/docs/a.txt", len("newer content")) },
		},
		{
			name:    "folder emptied and removed",
			change:  func(m *mounted) error { return os.RemoveAll(m.backing("to/bob/docs")) },
			stale:   func(m *mounted) error { return exists(m, "to/bob/docs/a.txt") },
			changed: "to/bob/docs",
			fresh:   func(m *mounted) error { return missing(m, "to/bob/docs") },
		},
		{
			name:    "the whole of to/",
			change:  func(m *mounted) error { return os.Remove(m.backing("to/bob/docs/a.txt")) },
			stale:   func(m *mounted) error { return exists(m, "to/bob/docs/a.txt") },
			changed: "to",
			fresh:   func(m *mounted) error { return missing(m, "to/bob/docs/a.txt") },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mountWith(t, func(c *Config) { c.cacheTimeout = cachedFor })
			m.setMembers("bob")
			writeBacking(t, m, map[string]string{"to/bob/docs/a.txt": "a"})
			if err := exists(m, "to/bob/docs/a.txt"); err != nil {
				t.Fatal(err)
			}
			if err := tc.change(m); err != nil {
				t.Fatal(err)
			}
			if err := tc.stale(m); err != nil {
				t.Fatalf("before Changed, the kernel's cache should still show the old state: %v", err)
			}
			m.srv.Changed(tc.changed)
			if err := testutil.WaitFor(5*time.Second, func() error { return tc.fresh(m) }); err != nil {
				t.Fatalf("after Changed: %v", err)
			}
		})
	}
}

// TestToBackingIno: the invalidater recognises the nodes of a member's
// folder, its top included, as the backing files they stand for;
// otherwise every change there would be handled as a replacement.
func TestToBackingIno(t *testing.T) {
	m := mountTest(t)
	m.setMembers("bob")
	writeBacking(t, m, map[string]string{"to/bob/d/c": "c"})
	for _, p := range []string{"to", "to/bob", "to/bob/d", "to/bob/d/c"} {
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
