package folder

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The warnings the to/ tests wait for.
const (
	msgToStray   = "folder under to/ is no member's; nothing in it is sent"
	msgToBadName = "member has no to/ folder"
)

// waitTo waits until ToClosed (or ToRemoved, if removed) was called
// for name and rel.
func (h *harness) waitTo(t *testing.T, removed bool, name, rel string) {
	t.Helper()
	call := name + "/" + rel
	h.waitFor(t, fmt.Sprintf("To(closed or removed %v) %s", removed, call), func() error {
		closed, gone := h.syncer.toSnapshot()
		list := closed
		if removed {
			list = gone
		}
		if !slices.Contains(list, call) {
			return fmt.Errorf("ToClosed = %q, ToRemoved = %q", closed, gone)
		}
		return nil
	})
}

// waitDir waits until rel is a folder.
func (h *harness) waitDir(t *testing.T, rel string) {
	t.Helper()
	h.waitFor(t, rel+" made", func() error {
		fi, err := os.Stat(h.path(rel))
		if err == nil && !fi.IsDir() {
			return fmt.Errorf("%s is no folder", rel)
		}
		return err
	})
}

// waitBox waits until to/name/ is a member's box at rest: a file
// written there, ready, is reported. By then the folder's own creation
// has been handled, so what the test does next is seen by events only.
// The first ready file is named ready, later ones ready-n.
func (h *harness) waitBox(t *testing.T, name string) {
	t.Helper()
	h.waitDir(t, "to/"+name)
	ready := "ready"
	if closed, _ := h.syncer.toSnapshot(); slices.Contains(closed, name+"/"+ready) {
		ready = fmt.Sprintf("ready-%d", len(closed))
	}
	writeFile(t, h.path("to/"+name+"/"+ready), "r")
	h.waitTo(t, false, name, ready)
}

// wantNoOutbox checks that nothing but marker files was reported for
// outbox/.
func (h *harness) wantNoOutbox(t *testing.T) {
	t.Helper()
	closed, removed, _ := h.syncer.snapshot()
	closed = slices.DeleteFunc(closed, func(rel string) bool { return rel == "marker" })
	if len(closed) != 0 || len(removed) != 0 {
		t.Errorf("OutboxClosed calls = %q, OutboxRemoved calls = %q, want none", closed, removed)
	}
}

// TestFolderToMade: to/ holds one folder per member, none for a name
// that is no single file name (logged once each), and none for others.
func TestFolderToMade(t *testing.T) {
	h := startTreeMembers(t, []string{"carol", "..", "bob", "a/b"}, nil)
	h.waitDir(t, "to/bob")
	h.waitDir(t, "to/carol")
	h.waitLogged(t, msgToBadName, 2)
	h.settled(t, "marker")
	entries, err := os.ReadDir(h.path("to"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"bob", "carol"}) {
		t.Errorf("to/ holds %q, want [bob carol]", names)
	}
	if n := h.logs.count(msgToBadName); n != 2 {
		t.Errorf("%q logged %d times, want 2", msgToBadName, n)
	}
	if n := h.logs.count(msgToStray); n != 0 {
		t.Errorf("%q logged %d times, want none", msgToStray, n)
	}
}

// TestFolderToClosed: a file written in to/bob/ is reported to bob once,
// relative to to/bob/, and never as an outbox file; a file there before
// the start is left to the engine's rescan until it changes.
func TestFolderToClosed(t *testing.T) {
	h := startTreeMembers(t, []string{"bob", "carol"}, func(dir, _ string) {
		writeFile(t, filepath.Join(dir, "to", "bob", "old.txt"), "old")
	})
	h.waitDir(t, "to/carol")
	writeFile(t, h.path("to/bob/f"), "for bob")
	h.waitTo(t, false, "bob", "f")
	writeFile(t, h.path("to/bob/sub/g"), "deeper")
	h.waitTo(t, false, "bob", "sub/g")
	h.settled(t, "marker")
	closed, removed := h.syncer.toSnapshot()
	if countOf(closed, "bob/f") != 1 || slices.Contains(closed, "bob/old.txt") || len(removed) != 0 {
		t.Errorf("ToClosed calls = %q, ToRemoved calls = %q; want bob/f once, no bob/old.txt (present before start), no removal",
			closed, removed)
	}
	h.wantNoOutbox(t)
	if err := os.Chmod(h.path("to/bob/old.txt"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.waitTo(t, false, "bob", "old.txt")
}

// TestFolderToWriting: a file in to/bob/ held open for writing is not
// reported, and WritingTo says so, until its writer closes it.
func TestFolderToWriting(t *testing.T) {
	if !seesWriters {
		t.Skip("this system cannot tell when a writer closes a file")
	}
	h := startTreeMembers(t, []string{"bob"}, nil)
	h.waitBox(t, "bob")
	if err := os.Mkdir(h.path("to/bob/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.waitTo(t, false, "bob", "sub")
	file, err := os.Create(h.path("to/bob/sub/slow.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if _, err := file.Write([]byte("part")); err != nil {
		t.Fatal(err)
	}
	h.waitLogged(t, "outbox file open for writing", 1)
	for _, rel := range []string{"", "sub", "sub/slow.bin"} {
		if !h.tree.WritingTo("bob", rel) {
			t.Errorf("WritingTo(bob, %q) with a writer = false, want true", rel)
		}
	}
	for _, c := range []struct{ name, rel string }{{"carol", ""}, {"..", "to/bob"}, {"bob", "other"}} {
		if h.tree.WritingTo(c.name, c.rel) {
			t.Errorf("WritingTo(%q, %q) = true, want false", c.name, c.rel)
		}
	}
	if h.tree.Writing("") {
		t.Errorf("Writing(\"\") with a writer only in to/ = true, want false")
	}
	if closed, _ := h.syncer.toSnapshot(); slices.Contains(closed, "bob/sub/slow.bin") {
		t.Fatalf("ToClosed while the writer is open: %q", closed)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	h.waitTo(t, false, "bob", "sub/slow.bin")
	if h.tree.WritingTo("bob", "sub") {
		t.Errorf("WritingTo(bob, sub) after the close = true, want false")
	}
	h.wantNoOutbox(t)
}

// TestFolderToMovedIn: a folder made or moved into to/bob/ is reported
// as in outbox: the folder, its files and links, and its empty folders;
// a file written later below it is seen too.
func TestFolderToMovedIn(t *testing.T) {
	h := startTreeMembers(t, []string{"bob"}, nil)
	h.waitBox(t, "bob")
	if err := os.Mkdir(h.path("to/bob/made"), 0o755); err != nil {
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
	if err := os.Rename(outside, h.path("to/bob/moved")); err != nil {
		t.Fatal(err)
	}
	want := []string{"made", "moved", "moved/full/empty", "moved/full/f.txt", "moved/link"}
	for _, rel := range want {
		h.waitTo(t, false, "bob", rel)
	}
	writeFile(t, h.path("to/bob/moved/full/later.txt"), "l")
	h.waitTo(t, false, "bob", "moved/full/later.txt")
	closed, _ := h.syncer.toSnapshot()
	for _, rel := range append(want, "moved/full/later.txt") {
		if n := countOf(closed, "bob/"+rel); n != 1 {
			t.Errorf("ToClosed(bob, %q) called %d times, want 1 (all: %q)", rel, n, closed)
		}
	}
	h.wantNoOutbox(t)
}

// TestFolderToRemoved: a file removed from to/bob/ is reported removed
// to bob, not as an outbox removal.
func TestFolderToRemoved(t *testing.T) {
	h := startTreeMembers(t, []string{"bob"}, nil)
	h.waitBox(t, "bob")
	writeFile(t, h.path("to/bob/f"), "x")
	h.waitTo(t, false, "bob", "f")
	if err := os.Remove(h.path("to/bob/f")); err != nil {
		t.Fatal(err)
	}
	h.waitTo(t, true, "bob", "f")
	h.wantNoOutbox(t)
}

// TestFolderToMemberAdded: a member added later gets a folder, which
// reports to that member.
func TestFolderToMemberAdded(t *testing.T) {
	h := startTreeMembers(t, []string{"bob"}, nil)
	h.waitDir(t, "to/bob")
	h.syncer.setMembers("bob", "dave")
	h.waitBox(t, "dave")
	writeFile(t, h.path("to/dave/f"), "for dave")
	h.waitTo(t, false, "dave", "f")
}

// TestFolderToStray: a folder under to/ that is no member's (there at the
// start, made later, or a removed member's) is warned about once, never
// reported, and left as it is.
func TestFolderToStray(t *testing.T) {
	h := startTreeMembers(t, []string{"bob"}, func(dir, _ string) {
		writeFile(t, filepath.Join(dir, "to", "old", "x.txt"), "x")
	})
	h.waitBox(t, "bob")
	h.waitLogged(t, msgToStray, 1)
	writeFile(t, h.path("to/eve/y.txt"), "y")
	h.waitLogged(t, msgToStray, 2)
	writeFile(t, h.path("to/bob/f"), "f")
	h.waitTo(t, false, "bob", "f")

	// Renamed and back: eve2 is warned about, eve not again.
	if err := os.Rename(h.path("to/eve"), h.path("to/eve2")); err != nil {
		t.Fatal(err)
	}
	h.waitLogged(t, msgToStray, 3)
	if err := os.Rename(h.path("to/eve2"), h.path("to/eve")); err != nil {
		t.Fatal(err)
	}

	h.syncer.setMembers() // bob removed
	h.waitLogged(t, msgToStray, 4)
	writeFile(t, h.path("to/bob/z"), "z")
	writeFile(t, h.path("to/eve/y.txt"), "y again")
	if err := os.Remove(h.path("to/bob/f")); err != nil {
		t.Fatal(err)
	}
	h.settled(t, "marker")
	closed, removed := h.syncer.toSnapshot()
	if !slices.Equal(closed, []string{"bob/ready", "bob/f"}) || len(removed) != 0 {
		t.Errorf("ToClosed calls = %q, ToRemoved calls = %q; want only bob/ready and bob/f closed, while bob was a member",
			closed, removed)
	}
	if n := h.logs.count(msgToStray); n != 4 {
		t.Errorf("%q logged %d times, want 4 (once per name)", msgToStray, n)
	}
	for _, rel := range []string{"to/old/x.txt", "to/eve/y.txt", "to/bob/z"} {
		if _, err := os.Stat(h.path(rel)); err != nil {
			t.Errorf("Stat(%s) = %v, want it left in place", rel, err)
		}
	}
	h.wantNoOutbox(t)
}

// TestFolderToFolderRemoved: a member's folder removed or moved away is
// made again and reports again; what was reported in it is reported
// removed; and so is to/ itself.
func TestFolderToFolderRemoved(t *testing.T) {
	h := startTreeMembers(t, []string{"bob"}, nil)
	h.waitBox(t, "bob")
	writeFile(t, h.path("to/bob/f"), "f")
	h.waitTo(t, false, "bob", "f")
	if err := os.Rename(h.path("to/bob"), filepath.Join(t.TempDir(), "away")); err != nil {
		t.Fatal(err)
	}
	h.waitTo(t, true, "bob", "f")
	h.waitBox(t, "bob")
	writeFile(t, h.path("to/bob/g"), "g")
	h.waitTo(t, false, "bob", "g")

	if err := os.RemoveAll(h.path("to")); err != nil {
		t.Fatal(err)
	}
	h.waitTo(t, true, "bob", "g")
	h.waitBox(t, "bob")
	writeFile(t, h.path("to/bob/h"), "h")
	h.waitTo(t, false, "bob", "h")
	h.wantNoOutbox(t)
}
