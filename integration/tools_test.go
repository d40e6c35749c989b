//go:build linux

package integration

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestOutboxTools puts into alice's outbox what people's own tools write
// there, with the FUSE outbox and the plain one: cp -a and rsync -a of a
// project with dotfiles, links, an executable and empty folders; a git
// clone; an editor's atomic saves; a file hard-linked while open; a chmod
// right after writing; a sparse file; a link out of the outbox; a file
// over the size limit. Bob must get the trees as they are (bytes, modes,
// links, empty folders), a working repository, every saved version, and
// no temporary name any of the tools used; alice
// must be told why the link and the big file are not sent.
func TestOutboxTools(t *testing.T) {
	longTest(t)
	for _, tool := range []string{"git", "rsync"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (apt-get install %s)", tool, tool)
		}
	}
	for _, mode := range []struct {
		name  string
		flags []string
	}{{"fuse", nil}, {"plain", []string{"--no-fuse"}}} {
		t.Run(mode.name, func(t *testing.T) {
			c := newCluster(t)
			bob := c.start("bob")
			alice := c.join("alice", bob, mode.flags...)
			alice.waitConnected(bob)
			src := makeProject(t)
			run(t, "", "cp", "-a", src, alice.path("outbox", "copy"))
			waitSame(t, src, bob.path("inbox", "alice", "copy"))
			run(t, "", "rsync", "-a", src+"/", alice.path("outbox", "rsynced")+"/")
			waitSame(t, src, bob.path("inbox", "alice", "rsynced"))
			checkClone(t, src, alice, bob)
			quietWriter(t, alice, bob)
			editorSaves(t, alice, bob)
			hardLinkWhileOpen(t, alice, bob)
			pausedWriter(t, alice, bob)
			chmodAfterWrite(t, alice, bob)
			sparseFile(t, alice, bob)
			linkOutside(t, alice, bob)
			tooBig(t, alice, bob, mode.flags == nil)
			noTemporaryNames(t, bob.path("inbox", "alice"))
		})
	}
}

// checkClone clones src into alice's outbox and checks bob's copy: every
// object and source file git left is at bob byte for byte, and git finds
// the repository whole. Git writes .git/HEAD, .git/config and .git/index
// more than once during a clone; each later version replaces the one bob
// got, as the folder is still in outbox/, so no numbered copy is left.
func checkClone(t *testing.T, src string, alice, bob *node) {
	t.Helper()
	run(t, "", "git", "clone", "-q", src, alice.path("outbox", "clone"))
	clone := bob.path("inbox", "alice", "clone")
	// Once every file of the clone is delivered and git is done, the files
	// move to sent/; the folders stay in outbox/.
	waitNoFiles(t, alice.path("outbox", "clone"))
	waitSame(t, alice.path("sent", "clone", ".git", "objects"), filepath.Join(clone, ".git", "objects"))
	waitSame(t, alice.path("sent", "clone", "src"), filepath.Join(clone, "src"))
	run(t, clone, "git", "fsck", "--no-progress")
	if got, want := run(t, clone, "git", "rev-parse", "HEAD"), run(t, src, "git", "rev-parse", "HEAD"); got != want {
		t.Errorf("HEAD at bob %s, want %s", got, want)
	}
	if got := run(t, clone, "git", "symbolic-ref", "HEAD"); got != "refs/heads/main" {
		t.Errorf("HEAD at bob names %s, want refs/heads/main", got)
	}
	if st := run(t, clone, "git", "status", "--porcelain", "--untracked-files=no"); st != "" {
		t.Errorf("git status of the clone at bob:\n%s", st)
	}
	noNumberedCopies(t, clone)
}

// noNumberedCopies fails for any "name (n)" under dir.
func noNumberedCopies(t *testing.T, dir string) {
	t.Helper()
	numbered := regexp.MustCompile(` \([0-9]+\)(\.[^.]*)?$`)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && numbered.MatchString(d.Name()) {
			t.Errorf("numbered copy at bob: %s", p)
		}
		return nil
	})
}

// quietWriter does what a long git clone does while it resolves deltas:
// it keeps a file open for writing without a sound for longer than a
// folder takes to settle, then rewrites a file it wrote at the start. The
// folder must stay in alice's outbox/ meanwhile, and bob must end with the
// new version in place of the first, with no numbered copy.
func quietWriter(t *testing.T, alice, bob *node) {
	t.Helper()
	head := alice.path("outbox", "slow", "HEAD")
	if err := os.MkdirAll(filepath.Dir(head), 0o755); err != nil {
		t.Fatal(err)
	}
	atomicSave(t, head, "ref: refs/heads/master\n")
	pack, err := os.Create(alice.path("outbox", "slow", "tmp_pack_1"))
	if err != nil {
		t.Fatal(err)
	}
	defer pack.Close()
	waitFileContent(t, bob.path("inbox", "alice", "slow", "HEAD"), []byte("ref: refs/heads/master\n"))
	// Delivered and quiet: without the writer it would move after 5 s.
	for end := time.Now().Add(7 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Lstat(head); err != nil {
			t.Fatalf("slow/HEAD left the outbox while a file in slow/ was open for writing: %v", err)
		}
	}
	atomicSave(t, head, "ref: refs/heads/main\n")
	if _, err := pack.WriteString("PACK"); err != nil {
		t.Fatal(err)
	}
	if err := pack.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(pack.Name(), alice.path("outbox", "slow", "pack-1.pack")); err != nil {
		t.Fatal(err)
	}
	waitFileContent(t, bob.path("inbox", "alice", "slow", "pack-1.pack"), []byte("PACK"))
	waitFileContent(t, bob.path("inbox", "alice", "slow", "HEAD"), []byte("ref: refs/heads/main\n"))
	waitFileContent(t, alice.path("sent", "slow", "HEAD"), []byte("ref: refs/heads/main\n"))
	noNumberedCopies(t, bob.path("inbox", "alice", "slow"))
}

// hardLinkWhileOpen links a file under a second name while a writer still
// has it open, as a build tool may: both names arrive, whole.
func hardLinkWhileOpen(t *testing.T, alice, bob *node) {
	t.Helper()
	dir := alice.path("outbox", "links")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "sh", "-c", `exec 3>a.txt; printf 'one\n' >&3; ln a.txt b.txt; printf 'two\n' >&3; exec 3>&-`)
	for _, name := range []string{"a.txt", "b.txt"} {
		waitFileContent(t, bob.path("inbox", "alice", "links", name), []byte("one\ntwo\n"))
	}
}

// pausedWriter keeps a written file open while another file is
// delivered, then closes it without writing again: it is sent then, and
// not before. The plain folder learns of that close from inotify's
// close-write, not from a timer.
func pausedWriter(t *testing.T, alice, bob *node) {
	t.Helper()
	// Both files sit in outbox/ itself: a new folder is walked by the
	// engine when it appears, and a file open in it then would be sent
	// as found.
	held, err := os.Create(alice.path("outbox", "paused-held.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := held.WriteString("whole\n"); err != nil {
		t.Fatal(err)
	}
	// The marker is written after held.txt, so once bob has it held.txt
	// was looked at too, and found open.
	if err := os.WriteFile(alice.path("outbox", "paused-marker.txt"), []byte("m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFileContent(t, bob.path("inbox", "alice", "paused-marker.txt"), []byte("m\n"))
	if _, err := os.Stat(bob.path("inbox", "alice", "paused-held.txt")); err == nil {
		t.Errorf("paused-held.txt reached bob while alice still had it open for writing")
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	waitFileContent(t, bob.path("inbox", "alice", "paused-held.txt"), []byte("whole\n"))
}

// chmodAfterWrite writes a script and makes it executable at once: it
// arrives executable, whether the chmod came before its OFFER or after.
func chmodAfterWrite(t *testing.T, alice, bob *node) {
	t.Helper()
	dir := alice.path("outbox", "scripts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "sh", "-c", `printf '#!/bin/sh\necho hi\n' > run.sh && chmod 755 run.sh`)
	got := bob.path("inbox", "alice", "scripts", "run.sh")
	waitFileContent(t, got, []byte("#!/bin/sh\necho hi\n"))
	err := testutil.WaitFor(30*time.Second, func() error {
		fi, err := os.Stat(got)
		if err == nil && fi.Mode().Perm() != 0o755 {
			err = fmt.Errorf("mode %v, want -rwxr-xr-x", fi.Mode().Perm())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if out := run(t, "", got); out != "hi" {
		t.Errorf("bob's run.sh printed %q", out)
	}
}

// sparseFile sends 256 MiB holding 16 KiB of data, made with truncate and
// dd: bob's copy has the same bytes and its holes stay holes.
func sparseFile(t *testing.T, alice, bob *node) {
	t.Helper()
	img := alice.path("outbox", "disk.img")
	run(t, "", "truncate", "-s", "256M", img)
	run(t, "", "dd", "if=/dev/urandom", "of="+img, "bs=16k", "count=1", "seek=5000", "conv=notrunc", "status=none")
	want := run(t, "", "sha256sum", img)
	got := bob.path("inbox", "alice", "disk.img")
	err := testutil.WaitFor(60*time.Second, func() error {
		sum, err := exec.Command("sha256sum", got).Output()
		if err != nil || strings.Fields(string(sum))[0] != strings.Fields(want)[0] {
			return fmt.Errorf("bob's disk.img not the same yet (%v)", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(got, &st); err != nil {
		t.Fatal(err)
	}
	if used := st.Blocks * 512; used > 4<<20 {
		t.Errorf("bob's 256 MiB sparse file takes %d bytes on disk, want its holes kept", used)
	}
}

// linkOutside puts a link to /etc/passwd in the outbox: it is not sent,
// and alice's status and peers file say why.
func linkOutside(t *testing.T, alice, bob *node) {
	t.Helper()
	if err := os.Symlink("/etc/passwd", alice.path("outbox", "passwd")); err != nil {
		t.Fatal(err)
	}
	why := "passwd: not sent: a symbolic link to a place outside outbox/"
	err := testutil.WaitFor(30*time.Second, func() error {
		peers, _ := os.ReadFile(alice.path("peers"))
		status, _ := alice.c.meshfs("status", alice.mnt)
		if !strings.Contains(string(peers), why) || !strings.Contains(status, "passwd") {
			return fmt.Errorf("not told why the link is not sent:\n%s\n%s", peers, status)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(bob.path("inbox", "alice", "passwd")); err == nil {
		t.Error("the link out of the outbox reached bob")
	}
}

// tooBig puts a 2 TiB file (sparse: it costs no disk) in the outbox, over
// the 1 TiB default limit: it is not sent, and alice is told why in her
// status, her peers file and, through FUSE, the file's user.meshfs.state.
func tooBig(t *testing.T, alice, bob *node, fuse bool) {
	t.Helper()
	img := alice.path("outbox", "huge.img")
	run(t, "", "truncate", "-s", "2T", img)
	why := "too big: 2.0 TiB, limit 1.0 TiB (--max-file-size)"
	err := testutil.WaitFor(30*time.Second, func() error {
		peers, _ := os.ReadFile(alice.path("peers"))
		status, _ := alice.c.meshfs("status", alice.mnt)
		if !strings.Contains(string(peers), "huge.img: "+why) || !strings.Contains(status, why) {
			return fmt.Errorf("not told why huge.img is not sent:\n%s\n%s", peers, status)
		}
		if !fuse {
			return nil
		}
		buf := make([]byte, 256)
		n, err := unix.Getxattr(img, "user.meshfs.state", buf)
		if err != nil || string(buf[:n]) != why {
			return fmt.Errorf("user.meshfs.state = %q, %v", buf[:max(n, 0)], err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(img); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(bob.path("inbox", "alice", "huge.img")); err == nil {
		t.Error("a file over the size limit reached bob")
	}
}

// makeProject makes a small git repository with dotfiles, a subfolder, an
// executable, two links inside it and an empty folder.
func makeProject(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "project")
	files := map[string]string{
		"README.md": "# project\n", ".gitignore": "*.o\n", ".env": "SECRET=1\n", "src/main.go": "package main\n",
		"bin/run": "#!/bin/sh\n",
	}
	for rel, data := range files {
		writeFile(t, filepath.Join(src, rel), data)
	}
	if err := os.Chmod(filepath.Join(src, "bin", "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"readme": "README.md", "src/up": "../README.md"} {
		if err := os.Symlink(target, filepath.Join(src, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(src, "empty", "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A branch other than git's default: the clone writes .git/HEAD for
	// the default first and for main once it knows the remote's.
	run(t, src, "git", "init", "-q", "-b", "main")
	run(t, src, "git", "add", "-A")
	run(t, src, "git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "one")
	return src
}

// editorSaves saves docs/doc.txt three times the way editors do (write a
// temporary name, fsync, rename over the file): every save must succeed,
// even after the first version moved to sent/, and the last version must
// arrive as a numbered doc (n).txt beside the first, which stays as it is.
func editorSaves(t *testing.T, alice, bob *node) {
	t.Helper()
	doc := alice.path("outbox", "docs", "doc.txt")
	if err := os.MkdirAll(filepath.Dir(doc), 0o755); err != nil {
		t.Fatal(err)
	}
	atomicSave(t, doc, "version 1\n")
	waitFileContent(t, bob.path("inbox", "alice", "docs", "doc.txt"), []byte("version 1\n"))
	waitFileContent(t, alice.path("sent", "docs", "doc.txt"), []byte("version 1\n"))
	atomicSave(t, doc, "version 2\n") // the folder must still be there
	atomicSave(t, doc, "version 3\n")
	// Version 2 arrives as doc (1).txt unless version 3 replaced it in the
	// outbox before it was sent; the last version always arrives.
	err := testutil.WaitFor(60*time.Second, func() error {
		for _, name := range []string{"doc (1).txt", "doc (2).txt"} {
			if b, _ := os.ReadFile(bob.path("inbox", "alice", "docs", name)); string(b) == "version 3\n" {
				return nil
			}
		}
		return fmt.Errorf("version 3 not at bob")
	})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(bob.path("inbox", "alice", "docs", "doc.txt")); string(b) != "version 1\n" {
		t.Errorf("bob's doc.txt = %q, want the first version untouched", b)
	}
}

// waitNoFiles polls until no regular file is left under dir (its folders
// may stay).
func waitNoFiles(t *testing.T, dir string) {
	t.Helper()
	err := testutil.WaitFor(60*time.Second, func() error {
		return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				return fmt.Errorf("%s still in the outbox", p)
			}
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// atomicSave writes path as an editor does: a temporary file, fsync, rename.
func atomicSave(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatalf("save %s: %v", path, err)
	}
	_, err = f.WriteString(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		t.Fatalf("save %s: %v", path, err)
	}
}

// waitSame polls until everything under want is under got as it is: each
// folder, each link with the same target, each file with the same bytes
// and permission bits.
func waitSame(t *testing.T, want, got string) {
	t.Helper()
	err := testutil.WaitFor(60*time.Second, func() error {
		return filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(want, p)
			return sameEntry(p, filepath.Join(got, rel), rel)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sameEntry compares one entry of two trees.
func sameEntry(want, got, rel string) error {
	a, err := os.Lstat(want)
	if err != nil {
		return err
	}
	b, err := os.Lstat(got)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	switch {
	case a.Mode().Type() != b.Mode().Type():
		return fmt.Errorf("%s: a %v at bob, want %v", rel, b.Mode().Type(), a.Mode().Type())
	case a.Mode()&fs.ModeSymlink != 0:
		ta, _ := os.Readlink(want)
		tb, _ := os.Readlink(got)
		if ta != tb {
			return fmt.Errorf("%s: link to %q at bob, want %q", rel, tb, ta)
		}
	case a.Mode().IsRegular():
		da, _ := os.ReadFile(want)
		db, _ := os.ReadFile(got)
		if string(da) != string(db) || a.Mode().Perm() != b.Mode().Perm() {
			return fmt.Errorf("%s: %d bytes %v at bob, want %d bytes %v", rel, len(db), b.Mode().Perm(), len(da), a.Mode().Perm())
		}
	}
	return nil
}

// noTemporaryNames fails on any name under dir that a tool only ever used
// while writing: those must never leave the outbox.
func noTemporaryNames(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		for _, bad := range []string{".tmp", ".lock", "tmp_obj_", "tmp_pack_", "tmp_idx_"} {
			if strings.HasSuffix(name, bad) || strings.HasPrefix(name, bad) {
				t.Errorf("temporary name reached bob: %s", p)
			}
		}
		return nil
	})
}

// run runs a command in dir and returns its trimmed output; a failure
// fails the test.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
