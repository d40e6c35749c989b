//go:build linux

package fs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

func closed(rel string) call  { return call{"closed", rel} }
func removed(rel string) call { return call{"removed", rel} }

// waitWriters polls until n writable outbox handles are open.
func (m *mounted) waitWriters(t *testing.T, n int) {
	t.Helper()
	err := testutil.WaitFor(5*time.Second, func() error {
		if got := m.openWriters(); got != n {
			return fmt.Errorf("open writers = %d, want %d", got, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOutboxClosedOnceAfterClose(t *testing.T) {
	m := mountTest(t)
	f, err := os.Create(m.path("outbox/report.txt"))
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("meshfs "), 300000)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if got := m.fake.snapshot("closed"); len(got) != 0 {
		t.Fatalf("OutboxClosed before close: %v", got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("report.txt"))
	got, err := os.ReadFile(m.backing("outbox/report.txt"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("backing file: %d bytes, err %v; want %d bytes", len(got), err, len(data))
	}
	// Reading does not report the file again.
	if _, err := os.ReadFile(m.path("outbox/report.txt")); err != nil {
		t.Fatal(err)
	}
	m.waitWriters(t, 0)
	if got := m.fake.snapshot("closed"); len(got) != 1 {
		t.Fatalf("OutboxClosed calls = %v, want exactly one", got)
	}
}

func TestOutboxBlksize(t *testing.T) {
	m := mountTest(t)
	if err := os.WriteFile(m.path("outbox/f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(m.path("outbox/f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blksize != blockSize {
		t.Errorf("st_blksize = %d, want %d", st.Blksize, blockSize)
	}
	var top syscall.Stat_t
	if err := syscall.Stat(m.path("outbox"), &top); err != nil {
		t.Fatal(err)
	}
	if top.Ino == st.Ino {
		t.Errorf("outbox/ and outbox/f share inode number %d", st.Ino)
	}
}

func TestOutboxReportsAfterLastHandle(t *testing.T) {
	tests := []struct {
		name   string
		second func(t *testing.T, m *mounted, first *os.File) *os.File
	}{
		{"dup", func(t *testing.T, m *mounted, first *os.File) *os.File {
			fd, err := syscall.Dup(int(first.Fd()))
			if err != nil {
				t.Fatal(err)
			}
			return os.NewFile(uintptr(fd), "dup")
		}},
		{"second open", func(t *testing.T, m *mounted, first *os.File) *os.File {
			f, err := os.OpenFile(m.path("outbox/f"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mountTest(t)
			first, err := os.Create(m.path("outbox/f"))
			if err != nil {
				t.Fatal(err)
			}
			second := tc.second(t, m, first)
			if _, err := second.Write([]byte("hello\n")); err != nil {
				t.Fatal(err)
			}
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.name == "second open" {
				m.waitWriters(t, 1) // the first handle's release was processed
			}
			if got := m.fake.snapshot("closed"); len(got) != 0 {
				t.Fatalf("OutboxClosed with a handle still open: %v", got)
			}
			if err := second.Close(); err != nil {
				t.Fatal(err)
			}
			m.fake.waitCalls(t, "closed", closed("f"))
		})
	}
}

func TestOutboxRename(t *testing.T) {
	m := mountTest(t)
	if err := os.WriteFile(m.path("outbox/.f.part"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed(".f.part"))
	if err := os.Rename(m.path("outbox/.f.part"), m.path("outbox/f")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", closed(".f.part"), removed(".f.part"), closed("f"))
}

func TestOutboxRenameOfBackingFile(t *testing.T) {
	// A file that reached the backing folder without a FUSE write (e.g.
	// before the mount) is reported when renamed through the mount.
	m := mountTest(t)
	if err := os.WriteFile(m.backing("outbox/tmp"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(m.path("outbox/tmp"), m.path("outbox/final")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", removed("tmp"), closed("final"))
}

func TestOutboxRenameWhileWriting(t *testing.T) {
	m := mountTest(t)
	f, err := os.Create(m.path("outbox/a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(m.path("outbox/a"), m.path("outbox/b")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", removed("a"))
	if _, err := f.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", removed("a"), closed("b"))
}

func TestOutboxFolders(t *testing.T) {
	m := mountTest(t)
	if err := os.MkdirAll(m.path("outbox/d/e"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.path("outbox/d/e/f"), []byte("nested"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", closed("d"), closed("d/e"), closed("d/e/f"))
	if err := os.Rename(m.path("outbox/d"), m.path("outbox/d2")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", closed("d"), closed("d/e"), closed("d/e/f"), removed("d"), closed("d2/e/f"))
	if err := os.RemoveAll(m.path("outbox/d2")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "removed", removed("d"), removed("d2/e/f"), removed("d2/e"), removed("d2"))
}

func TestOutboxUnlink(t *testing.T) {
	m := mountTest(t)
	if err := os.WriteFile(m.path("outbox/f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("f"))
	if err := os.Remove(m.path("outbox/f")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "removed", removed("f"))
}

func TestOutboxUnlinkWhileWriting(t *testing.T) {
	m := mountTest(t)
	f, err := os.Create(m.path("outbox/gone"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m.path("outbox/gone")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.waitWriters(t, 0)
	m.fake.waitCalls(t, "", removed("gone"))
}

func TestOutboxTruncateByPath(t *testing.T) {
	m := mountTest(t)
	if err := os.WriteFile(m.path("outbox/f"), []byte("long content"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("f"))
	if err := os.Truncate(m.path("outbox/f"), 4); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("f"), closed("f"))
}

func TestOutboxLink(t *testing.T) {
	m := mountTest(t)
	if err := os.WriteFile(m.path("outbox/f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("f"))
	if err := os.Link(m.path("outbox/f"), m.path("outbox/g")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("f"), closed("g"))
}

func TestOutboxCrossSubtreeRename(t *testing.T) {
	m := mountTest(t)
	if err := os.WriteFile(m.backing("inbox/f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	errIs(t, "rename inbox -> outbox", os.Rename(m.path("inbox/f"), m.path("outbox/f")), syscall.EXDEV)
}

// TestSentMovedFileIsDistinct checks that a file sync moves from outbox/
// to sent/ in the backing tree (same inode) shows under sent/ with the sent
// policy and content, while outbox/ no longer has it.
func TestSentMovedFileIsDistinct(t *testing.T) {
	m := mountTest(t)
	if err := os.WriteFile(m.path("outbox/f"), []byte("sent data"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("f"))
	if err := os.Rename(m.backing("outbox/f"), m.backing("sent/f")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(m.path("sent/f"))
	if err != nil || string(got) != "sent data" {
		t.Fatalf("ReadFile(sent/f) = %q, %v", got, err)
	}
	_, err = os.OpenFile(m.path("sent/f"), os.O_WRONLY, 0)
	errIs(t, "open sent/f for writing", err, syscall.EPERM)
	if err := testutil.WaitFor(5*time.Second, func() error {
		if _, err := os.Stat(m.path("outbox/f")); !os.IsNotExist(err) {
			return fmt.Errorf("Stat(outbox/f) = %v, want not exist", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestOutboxFolderRemovedBehindTheKernel: sync removes an outbox folder once
// everything in it was delivered, while the kernel still knows the folder;
// creating a file or folder in it then recreates it instead of failing.
func TestOutboxFolderRemovedBehindTheKernel(t *testing.T) {
	m := mountTest(t)
	if err := os.MkdirAll(m.path("outbox/proj/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.path("outbox/proj/sub")); err != nil { // the kernel caches both dentries
		t.Fatal(err)
	}
	if err := os.RemoveAll(m.backing("outbox/proj")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.path("outbox/proj/sub/late.txt"), []byte("late\n"), 0o644); err != nil {
		t.Fatalf("create in a folder removed behind the kernel: %v", err)
	}
	m.fake.waitCalls(t, "closed", closed("proj"), closed("proj/sub"), closed("proj/sub/late.txt"))
	if got, err := os.ReadFile(m.backing("outbox/proj/sub/late.txt")); err != nil || string(got) != "late\n" {
		t.Fatalf("backing file = %q, %v", got, err)
	}
	if err := os.RemoveAll(m.backing("outbox/proj")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(m.path("outbox/proj/again"), 0o755); err != nil {
		t.Fatalf("mkdir in a folder removed behind the kernel: %v", err)
	}
}

// TestOutboxWriting: Server.Writing says whether a file at or below an
// outbox path is open for writing through the mount, as a git clone keeps
// its pack open while it is quiet; a reader does not count.
func TestOutboxWriting(t *testing.T) {
	m := mountTest(t)
	if err := os.MkdirAll(m.path("outbox/repo/objects"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.path("outbox/notes"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The kernel releases a closed file after close(2) returns.
	if err := testutil.WaitFor(5*time.Second, func() error {
		if m.srv.Writing("notes") {
			return errors.New("notes still open for writing after its writer closed it")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(m.path("outbox/notes"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := os.Create(m.path("outbox/repo/objects/tmp_pack_1"))
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]bool{"repo": true, "repo/objects": true, "re": false, "notes": false, "other": false} {
		if got := m.srv.Writing(rel); got != want {
			t.Errorf("Writing(%q) = %v with the pack open, want %v", rel, got, want)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	err = testutil.WaitFor(5*time.Second, func() error { // the release comes after close returns
		if m.srv.Writing("repo") {
			return errors.New("repo/ still has a writer")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
