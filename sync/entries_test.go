package sync

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCleanTarget(t *testing.T) {
	ok := []struct{ rel, target, want string }{
		{"l", "f", "f"},
		{"a/l", "../f", "../f"},
		{"a/b/l", "../../c/./f", "../../c/f"},
		{"a/l", "x/../y", "y"},
		{"a/l", ".", "."},
	}
	for _, c := range ok {
		if got, err := cleanTarget(c.rel, c.target); err != nil || got != c.want {
			t.Errorf("cleanTarget(%q, %q) = %q, %v; want %q", c.rel, c.target, got, err, c.want)
		}
	}
	outside := []struct{ rel, target string }{
		{"l", "/etc/passwd"}, {"l", ".."}, {"l", "../x"}, {"a/l", "../../x"}, {"a/l", "b/../../../x"}, {"l", "C:/x"},
	}
	for _, c := range outside {
		if _, err := cleanTarget(c.rel, c.target); !errors.Is(err, errLinkOutside) {
			t.Errorf("cleanTarget(%q, %q) = %v, want outside", c.rel, c.target, err)
		}
	}
	for _, target := range []string{"", "a\x00b", `a\b`, strings.Repeat("a", maxPathLen+1), "\xff"} {
		if _, err := cleanTarget("l", target); !errors.Is(err, ErrInvalidName) {
			t.Errorf("cleanTarget(l, %q) = %v, want invalid", target, err)
		}
	}
}

// TestLinksAndEmptyFolders: a link whose target stays inside outbox/
// arrives as the same relative link, one that leaves it or is absolute
// stays with the sender with the reason, and an empty folder arrives.
func TestLinksAndEmptyFolders(t *testing.T) {
	_, a, b := pair(t, func(c *Config) { c.DotHold = 100 * time.Millisecond })
	data := randBytes(4, 700)
	a.put("tree/f", data)
	links := map[string]string{"tree/l": "f", "tree/sub/up": "../f", "tree/abs": "/etc/passwd", "tree/out": "../../x"}
	for rel, target := range links {
		a.symlink(rel, target)
	}
	a.mkdir("tree/empty/inner")
	a.mkdir("tree/only-temp")
	a.put("tree/only-temp/x.tmp", []byte("temporary"))

	b.waitFile("inbox/alice/tree/f", data)
	b.waitFile("inbox/alice/tree/l", data) // read through the link
	b.waitFile("inbox/alice/tree/sub/up", data)
	for rel, want := range map[string]string{"tree/l": "f", "tree/sub/up": "../f"} {
		if got, err := os.Readlink(filepath.Join(b.root, "inbox", "alice", rel)); err != nil || got != want {
			t.Errorf("bob's %s -> %q, %v; want -> %q", rel, got, err, want)
		}
	}
	for _, dir := range []string{"tree/empty/inner", "tree/only-temp"} {
		waitFor(t, func() bool { return isDir(filepath.Join(b.root, "inbox", "alice", dir)) })
	}
	for rel := range map[string]bool{"tree/abs": true, "tree/out": true} {
		want := "not sent: a symbolic link to a place outside outbox/"
		waitFor(t, func() bool { return a.engine().UnsentReason(rel) == want })
		if _, err := os.Lstat(filepath.Join(b.root, "inbox", "alice", rel)); err == nil {
			t.Errorf("%s reached bob", rel)
		}
	}
	if exists(filepath.Join(b.root, "inbox", "alice", "tree", "only-temp", "x.tmp")) {
		t.Errorf("a temporary name reached bob")
	}
	// The delivered link moves to sent/ as a link; folders stay.
	waitFor(t, func() bool { _, err := os.Readlink(filepath.Join(a.root, "sent", "tree", "l")); return err == nil })
	if !isDir(filepath.Join(a.root, "outbox", "tree", "empty", "inner")) {
		t.Errorf("the empty folder left outbox/")
	}
}

// TestChmodAfterDelivery: a mode changed after the file was delivered
// reaches the receiver's copy, and the file moves to sent/ only then.
func TestChmodAfterDelivery(t *testing.T) {
	_, a, b := pair(t, func(c *Config) { c.TreeSettle = 300 * time.Millisecond })
	script := []byte("#!/bin/sh\necho hi\n")
	a.put("run.sh", script)
	b.waitFile("inbox/alice/run.sh", script)
	if err := os.Chmod(filepath.Join(a.root, "outbox", "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	a.engine().OutboxClosed("run.sh")
	waitFor(t, func() bool {
		fi, err := os.Stat(filepath.Join(b.root, "inbox", "alice", "run.sh"))
		return err == nil && fi.Mode().Perm() == 0o755
	})
	a.waitFile("sent/run.sh", script)
	if n := countEntries(t, filepath.Join(b.root, "inbox", "alice")); n != 1 {
		t.Errorf("bob's inbox holds %d entries, want the one file", n)
	}
}

func (fn *fakeNode) symlink(rel, target string) {
	fn.net.t.Helper()
	p := filepath.Join(fn.root, "outbox", filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		fn.net.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		fn.net.t.Fatal(err)
	}
	fn.engine().OutboxClosed(rel)
}

func (fn *fakeNode) mkdir(rel string) {
	fn.net.t.Helper()
	if err := os.MkdirAll(filepath.Join(fn.root, "outbox", filepath.FromSlash(rel)), 0o755); err != nil {
		fn.net.t.Fatal(err)
	}
	fn.engine().OutboxClosed(rel)
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}

func countEntries(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestNewVersionInFolder: a file inside a folder written again while its
// first version is still in outbox/ (git rewriting .git/HEAD during a
// clone) replaces the receiver's copy, also when written twice quickly;
// once the file moved to sent/, a new version arrives numbered, and so
// does a top-level file written again at any time.
func TestNewVersionInFolder(t *testing.T) {
	_, a, b := pair(t, func(c *Config) { c.TreeSettle = 2 * time.Second })
	a.put("repo/HEAD", []byte("ref: refs/heads/master\n"))
	a.put("top.txt", []byte("top 1"))
	b.waitFile("inbox/alice/repo/HEAD", []byte("ref: refs/heads/master\n"))
	b.waitFile("inbox/alice/top.txt", []byte("top 1"))
	a.put("repo/HEAD", []byte("ref: refs/heads/mai\n"))
	a.put("repo/HEAD", []byte("ref: refs/heads/main\n"))
	a.put("top.txt", []byte("top 2"))
	b.waitFile("inbox/alice/repo/HEAD", []byte("ref: refs/heads/main\n"))
	b.waitFile("inbox/alice/top (1).txt", []byte("top 2"))
	a.waitFile("sent/repo/HEAD", []byte("ref: refs/heads/main\n"))
	a.put("repo/HEAD", []byte("ref: refs/heads/next\n"))
	b.waitFile("inbox/alice/repo/HEAD (1)", []byte("ref: refs/heads/next\n"))
	b.waitFile("inbox/alice/repo/HEAD", []byte("ref: refs/heads/main\n"))
	if n := countEntries(t, filepath.Join(b.root, "inbox", "alice", "repo")); n != 2 {
		t.Errorf("bob's repo/ holds %d entries, want HEAD and HEAD (1)", n)
	}
}

// TestTreeWaitsForWriter: a delivered folder stays in outbox/ while the
// frontend says a file under it is open for writing, however long the
// writer is quiet, and a rewrite meanwhile still replaces bob's copy;
// once the writer is gone the folder's files move to sent/.
func TestTreeWaitsForWriter(t *testing.T) {
	var writing atomic.Bool
	var asked atomic.Int32
	writing.Store(true)
	_, a, b := pair(t, func(c *Config) {
		c.TreeSettle = 100 * time.Millisecond
		c.Writing = func(rel string) bool {
			if rel == "repo" {
				asked.Add(1)
			}
			return writing.Load()
		}
	})
	a.put("repo/HEAD", []byte("ref: refs/heads/master\n"))
	b.waitFile("inbox/alice/repo/HEAD", []byte("ref: refs/heads/master\n"))
	waitFor(t, func() bool { return asked.Load() >= 3 }) // settled three times, held each time
	if !exists(filepath.Join(a.root, "outbox", "repo", "HEAD")) {
		t.Fatal("repo/HEAD left outbox/ while a file under repo/ was open for writing")
	}
	a.put("repo/HEAD", []byte("ref: refs/heads/main\n"))
	b.waitFile("inbox/alice/repo/HEAD", []byte("ref: refs/heads/main\n"))
	writing.Store(false)
	a.waitFile("sent/repo/HEAD", []byte("ref: refs/heads/main\n"))
	if n := countEntries(t, filepath.Join(b.root, "inbox", "alice", "repo")); n != 1 {
		t.Errorf("bob's repo/ holds %d entries, want HEAD alone", n)
	}
}
