//go:build linux

package fs

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOutboxHardLinkWhileWriting: a file hard-linked under a second name
// while a writer holds it is reported under both names at its last
// release (go-fuse's node knows only one parent at a time).
func TestOutboxHardLinkWhileWriting(t *testing.T) {
	m := mountTest(t)
	f, err := os.Create(m.path("outbox/a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(m.backing("outbox/d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(m.path("outbox/a"), m.path("outbox/d/b")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("both names")); err != nil {
		t.Fatal(err)
	}
	if got := m.fake.snapshot("closed"); len(got) != 0 {
		t.Fatalf("OutboxClosed while a writer is open: %v", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCallSet(t, "closed", closed("a"), closed("d/b"))
}

// TestOutboxHardLinkNamesGoneMeanwhile: of the names a file got while
// open for writing, the release reports only those that still name it:
// not one unlinked meanwhile, nor one that another file took over.
func TestOutboxHardLinkNamesGoneMeanwhile(t *testing.T) {
	m := mountTest(t)
	f, err := os.Create(m.path("outbox/a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"b", "c"} {
		if err := os.Link(m.path("outbox/a"), m.path("outbox/"+name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(m.path("outbox/b")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.path("outbox/other"), []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("other"))
	if err := os.Rename(m.path("outbox/other"), m.path("outbox/c")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("other"), closed("c"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("other"), closed("c"), closed("a"))
	if err := os.WriteFile(m.path("outbox/marker"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("other"), closed("c"), closed("a"), closed("marker"))
}

// TestOutboxLinkOfClosedFileInWriting: git publishes a loose object with
// link(tmp, final) then unlink(tmp), and the kernel may still hold the
// RELEASE of tmp's writer when the link arrives. With the writer still
// open at the link, the final name must be reported by the release.
func TestOutboxLinkOfClosedFileInWriting(t *testing.T) {
	m := mountTest(t)
	if err := os.MkdirAll(m.backing("outbox/.git/objects/b9"), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := m.path("outbox/.git/objects/b9/tmp_obj_Xa1b2c")
	final := m.path("outbox/.git/objects/b9/270df7")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("blob 5\x00hello")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(tmp, final); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.waitWriters(t, 0)
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCallSet(t, "", closed(".git/objects/b9/tmp_obj_Xa1b2c"), closed(".git/objects/b9/270df7"),
		removed(".git/objects/b9/tmp_obj_Xa1b2c"))
}

// TestOutboxReleaseClearsMarkByHandle: the unfinished-writer mark is
// cleared through the released handle, not through a name that may be
// stale. go-fuse moves a renamed node in its tree only after Rename
// returns, so a RELEASE handled meanwhile sees the old name; renaming the
// backing file behind go-fuse's back makes that stale name certain.
func TestOutboxReleaseClearsMarkByHandle(t *testing.T) {
	m := mountTest(t)
	f, err := os.Create(m.path("outbox/doc.txt.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("saved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(m.backing("outbox/doc.txt.tmp"), m.backing("outbox/doc.txt")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.waitWriters(t, 0)
	if _, err := unix.Getxattr(m.backing("outbox/doc.txt"), xattrIncomplete, nil); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("backing mark after the last close: err = %v, want ENODATA", err)
	}
}
