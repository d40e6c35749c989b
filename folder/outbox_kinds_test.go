package folder

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// waitCount waits until OutboxClosed was called n times for rel.
func (h *harness) waitCount(t *testing.T, rel string, n int) {
	t.Helper()
	h.waitFor(t, fmt.Sprintf("OutboxClosed(%s) %d times", rel, n), func() error {
		if closed, _, _ := h.syncer.snapshot(); countOf(closed, rel) != n {
			return fmt.Errorf("closed = %q", closed)
		}
		return nil
	})
}

// settled writes a marker file and waits for its report: every event
// before it has been handled by then.
func (h *harness) settled(t *testing.T, marker string) {
	t.Helper()
	writeFile(t, h.path("outbox/"+marker), "m")
	h.waitClosed(t, marker)
}

// TestFolderOutboxChmod: a mode or mtime change of a settled file is a
// new version and is reported again; a chmod that changes nothing is not.
func TestFolderOutboxChmod(t *testing.T) {
	h := startTree(t, nil)
	writeFile(t, h.path("outbox/f"), "x")
	h.waitClosed(t, "f")
	if err := os.Chmod(h.path("outbox/f"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.waitCount(t, "f", 2)
	past := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(h.path("outbox/f"), past, past); err != nil {
		t.Fatal(err)
	}
	h.waitCount(t, "f", 3)
	if err := os.Chmod(h.path("outbox/f"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.settled(t, "marker")
	if closed, _, _ := h.syncer.snapshot(); countOf(closed, "f") != 3 {
		t.Errorf("OutboxClosed calls = %q, want f three times", closed)
	}
}

// TestFolderOutboxSymlink: symbolic links are reported as themselves and
// never followed: a link to a folder outside is neither walked nor
// watched.
func TestFolderOutboxSymlink(t *testing.T) {
	h := startTree(t, nil)
	outside := filepath.Join(t.TempDir(), "outside")
	writeFile(t, filepath.Join(outside, "secret.txt"), "s")
	if err := os.Symlink(outside, h.path("outbox/dirlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", h.path("outbox/dangling")); err != nil {
		t.Fatal(err)
	}
	h.waitClosed(t, "dirlink")
	h.waitClosed(t, "dangling")
	writeFile(t, filepath.Join(outside, "later.txt"), "l")
	h.settled(t, "marker")
	closed, _, _ := h.syncer.snapshot()
	for _, rel := range closed {
		if rel != "dirlink" && filepath.Dir(rel) == "dirlink" {
			t.Errorf("OutboxClosed(%q): the link was followed (all: %q)", rel, closed)
		}
	}
	if countOf(closed, "dirlink") != 1 {
		t.Errorf("OutboxClosed calls = %q, want dirlink once", closed)
	}
}

// TestFolderOutboxNewFolders: a folder made in outbox is reported, and so
// is a folder moved in with every folder inside it that has no entries.
func TestFolderOutboxNewFolders(t *testing.T) {
	h := startTree(t, nil)
	if err := os.Mkdir(h.path("outbox/made"), 0o755); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "tree")
	writeFile(t, filepath.Join(outside, "full", "f.txt"), "f")
	if err := os.MkdirAll(filepath.Join(outside, "full", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("full/f.txt", filepath.Join(outside, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(outside, h.path("outbox/moved")); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"made", "moved", "moved/full/empty", "moved/full/f.txt", "moved/link"} {
		h.waitClosed(t, rel)
	}
}

// TestFolderOutboxHardLinkWhileWriting: a file hard-linked while a writer
// holds it is reported under both names once the writer is gone, and
// only then.
func TestFolderOutboxHardLinkWhileWriting(t *testing.T) {
	if !seesWriters {
		t.Skip("this system cannot tell when a writer closes a file")
	}
	h := startTree(t, nil)
	f, err := os.Create(h.path("outbox/a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Link(h.path("outbox/a"), h.path("outbox/b")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("both names")); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the open file to be checked", func() error {
		if n := h.logs.count("outbox file open for writing"); n < 2 {
			return fmt.Errorf("checked %d times", n)
		}
		return nil
	})
	if closed, _, _ := h.syncer.snapshot(); slices.Contains(closed, "a") || slices.Contains(closed, "b") {
		t.Fatalf("OutboxClosed while the writer is open: %q", closed)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	h.waitClosed(t, "a")
	h.waitClosed(t, "b")
	h.settled(t, "marker")
	if closed, _, _ := h.syncer.snapshot(); countOf(closed, "a") != 1 || countOf(closed, "b") != 1 {
		t.Errorf("OutboxClosed calls = %q, want a and b once each", closed)
	}
}
