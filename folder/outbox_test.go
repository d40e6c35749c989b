package folder

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestFolderOutboxSlowWriter: a file written, paused (still open) and
// written again is reported once, and only after it is closed.
func TestFolderOutboxSlowWriter(t *testing.T) {
	if !seesWriters {
		t.Skip("this system cannot tell when a writer closes a file")
	}
	h := startTree(t, nil)
	file, err := os.Create(h.path("outbox/slow.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	// The writer pauses with the file open: it is held (and, without a
	// close watcher, checked again every debounce period).
	checks := 3
	if seesCloses {
		checks = 1
	}
	h.waitFor(t, "the open file to be checked", func() error {
		if n := h.logs.count("outbox file open for writing"); n < checks {
			return fmt.Errorf("checked %d times", n)
		}
		return nil
	})
	if closed, _, _ := h.syncer.snapshot(); len(closed) != 0 {
		t.Fatalf("OutboxClosed called while the writer is open: %q", closed)
	}
	if _, err := file.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	h.waitClosed(t, "slow.bin")
	// A later file is reported after every event of slow.bin was handled,
	// so by then a second report of slow.bin would have shown.
	writeFile(t, h.path("outbox/marker"), "m")
	h.waitClosed(t, "marker")
	if closed, _, _ := h.syncer.snapshot(); countOf(closed, "slow.bin") != 1 {
		t.Errorf("OutboxClosed calls = %q, want slow.bin once", closed)
	}
}

// TestFolderOutboxCloseWrite: a held file is reported when its writer
// closes it without writing again, found by the close watcher and not by
// a timer: it is checked for writers once while held.
func TestFolderOutboxCloseWrite(t *testing.T) {
	if !seesCloses {
		t.Skip("this system has no close watcher")
	}
	h := startTree(t, nil)
	file, err := os.Create(h.path("outbox/held.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.Write([]byte("all of it")); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "the open file to be held", func() error {
		if n := h.logs.count("outbox file open for writing"); n == 0 {
			return fmt.Errorf("not checked yet")
		}
		return nil
	})
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	h.waitClosed(t, "held.bin")
	if n := h.logs.count("outbox file open for writing"); n != 1 {
		t.Errorf("held file checked %d times while open, want 1: a timer polls it", n)
	}
}

// TestFolderOutboxFolders: folders made, copied or moved into outbox are
// watched, and files already inside when they arrive are reported.
func TestFolderOutboxFolders(t *testing.T) {
	h := startTree(t, nil)
	// Like cp -r: folders made and filled right away.
	writeFile(t, h.path("outbox/copied/a.txt"), "a")
	writeFile(t, h.path("outbox/copied/deep/er/b.txt"), "b")
	// Like mv: a filled tree renamed in, before any watch could see inside.
	outside := filepath.Join(t.TempDir(), "tree")
	writeFile(t, filepath.Join(outside, "c.txt"), "c")
	writeFile(t, filepath.Join(outside, "sub", "d.txt"), "d")
	if err := os.Rename(outside, h.path("outbox/moved")); err != nil {
		t.Fatal(err)
	}
	want := []string{"copied/a.txt", "copied/deep/er/b.txt", "moved/c.txt", "moved/sub/d.txt"}
	for _, rel := range want {
		h.waitClosed(t, rel)
	}
	// A file written later in a moved-in subfolder is seen: it is watched.
	writeFile(t, h.path("outbox/moved/sub/e.txt"), "e")
	h.waitClosed(t, "moved/sub/e.txt")
	closed, _, _ := h.syncer.snapshot()
	for _, rel := range append(want, "moved/sub/e.txt") {
		if n := countOf(closed, rel); n != 1 {
			t.Errorf("OutboxClosed(%q) called %d times, want 1 (all: %q)", rel, n, closed)
		}
	}
}

// TestFolderOutboxRenameAndRemove: a file renamed into outbox (no writer
// ever in outbox) is reported; deletions and moves out are reported as
// removals; files there before the start are left to the engine's rescan
// until they change.
func TestFolderOutboxRenameAndRemove(t *testing.T) {
	h := startTree(t, func(dir, _ string) {
		writeFile(t, filepath.Join(dir, "outbox", "old.txt"), "old")
	})
	staged := filepath.Join(t.TempDir(), "staged.txt")
	writeFile(t, staged, "s")
	if err := os.Rename(staged, h.path("outbox/renamed.txt")); err != nil {
		t.Fatal(err)
	}
	h.waitClosed(t, "renamed.txt")
	writeFile(t, h.path("outbox/dir/gone.txt"), "g")
	h.waitClosed(t, "dir/gone.txt")
	if err := os.Remove(h.path("outbox/dir/gone.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(h.path("outbox/renamed.txt"), h.path("renamed-away.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(h.path("outbox/dir")); err != nil {
		t.Fatal(err)
	}
	h.waitFor(t, "removals", func() error {
		_, removed, _ := h.syncer.snapshot()
		for _, rel := range []string{"dir/gone.txt", "renamed.txt", "dir"} {
			if !slices.Contains(removed, rel) {
				return fmt.Errorf("removed = %q, want %q in it", removed, rel)
			}
		}
		return nil
	})
	writeFile(t, h.path("outbox/marker"), "m")
	h.waitClosed(t, "marker")
	if closed, _, _ := h.syncer.snapshot(); slices.Contains(closed, "old.txt") {
		t.Errorf("OutboxClosed calls = %q, want no old.txt (present before start)", closed)
	}
	// Its mode changed, it is a new version: reported.
	if err := os.Chmod(h.path("outbox/old.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.waitClosed(t, "old.txt")
}

// TestFolderIgnoresInboxAndSent: the engine's own writes are not reported.
func TestFolderIgnoresInboxAndSent(t *testing.T) {
	h := startTree(t, nil)
	writeFile(t, h.path("inbox/alice/got.txt"), "x")
	writeFile(t, h.path("sent/done.txt"), "y")
	writeFile(t, h.path("outbox/marker"), "m")
	h.waitClosed(t, "marker")
	closed, removed, _ := h.syncer.snapshot()
	if len(closed) != 1 || len(removed) != 0 {
		t.Errorf("closed = %q, removed = %q; want only marker closed", closed, removed)
	}
}
