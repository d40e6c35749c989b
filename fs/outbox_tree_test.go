//go:build linux

package fs

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOutboxSymlink: a symbolic link made in outbox/ is reported once
// made, whether its target exists or not.
func TestOutboxSymlink(t *testing.T) {
	m := mountTest(t)
	if err := os.WriteFile(m.path("outbox/target"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("target"))
	if err := os.Symlink("target", m.path("outbox/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../nowhere", m.path("outbox/dangling")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("target"), closed("link"), closed("dangling"))
	if got, err := os.Readlink(m.backing("outbox/link")); got != "target" || err != nil {
		t.Errorf("backing link = %q, %v; want target", got, err)
	}
}

// TestOutboxMkdir: each folder made in outbox/ is reported.
func TestOutboxMkdir(t *testing.T) {
	m := mountTest(t)
	if err := os.MkdirAll(m.path("outbox/a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", closed("a"), closed("a/b"))
}

// TestOutboxRenamedInTree: of a folder renamed into place, every regular
// file, every symbolic link and every folder without entries is reported;
// a folder with entries is not (they are). The tree is built in the
// backing folder, where nothing is reported, and then renamed through the
// mount, as `mv` of a finished tree does.
func TestOutboxRenamedInTree(t *testing.T) {
	m := mountTest(t)
	stage := m.backing("outbox/.stage")
	for _, d := range []string{"empty", "sub/deeper", "sub/files"} {
		if err := os.MkdirAll(filepath.Join(stage, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(stage, "sub/files/f"), []byte("f"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("files/f", filepath.Join(stage, "sub/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(m.path("outbox/.stage"), m.path("outbox/proj")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCallSet(t, "", removed(".stage"), closed("proj/empty"), closed("proj/sub/deeper"),
		closed("proj/sub/files/f"), closed("proj/sub/link"))
}

// TestOutboxRenamedEmptyFolder: an empty folder renamed is reported under
// its new name.
func TestOutboxRenamedEmptyFolder(t *testing.T) {
	m := mountTest(t)
	if err := os.Mkdir(m.backing("outbox/old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(m.path("outbox/old"), m.path("outbox/new")); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "", removed("old"), closed("new"))
}
