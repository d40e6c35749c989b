//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshfs/meshfs/internal/testutil"
)

// xattr reads one extended attribute of p as getfattr does (size first).
func xattr(p, name string) (string, error) {
	sz, err := unix.Getxattr(p, name, nil)
	if err != nil {
		return "", err
	}
	buf := make([]byte, sz+64) // the state may grow between the calls
	n, err := unix.Getxattr(p, name, buf)
	return string(buf[:n]), err
}

// waitXattr polls until p's attribute name has value want.
func waitXattr(t *testing.T, p, name, want string) {
	t.Helper()
	err := testutil.WaitFor(30*time.Second, func() error {
		got, err := xattr(p, name)
		if err != nil || got != want {
			return fmt.Errorf("%s %s = %q, %v; want %q", p, name, got, err, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestXferStateModesAndFolders: delivery state as xattrs on an outbox file
// while one member is away; a folder tree arrives as the same tree with
// the permission bits and mtimes set before the last close.
func TestXferStateModesAndFolders(t *testing.T) {
	longTest(t)
	c := newCluster(t)
	m := c.fullMesh("alice", "bob", "carol")
	alice, bob, carol := m[0], m[1], m[2]
	if err := carol.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitPeerState(t, alice, "carol", "offline")

	mtime := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	files := []struct {
		rel  string
		mode os.FileMode
		data []byte
	}{
		{"proj/run.sh", 0o750, []byte("#!/bin/sh\necho hi\n")},
		{"proj/doc/notes.txt", 0o640, randomBytes(t, 2<<20+3)},
		{"proj/doc/deep/er/x.bin", 0o600, randomBytes(t, 1000)},
	}
	for _, f := range files {
		writeThroughMount(t, alice.path("outbox", f.rel), f.data, f.mode, mtime)
	}
	for _, f := range files {
		waitFileContent(t, bob.path("inbox", "alice", f.rel), f.data)
	}
	for _, f := range files {
		fi, err := os.Stat(bob.path("inbox", "alice", f.rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != f.mode || !fi.ModTime().Equal(mtime) {
			t.Errorf("%s at bob: mode %v mtime %v; want %v %v", f.rel, fi.Mode().Perm(), fi.ModTime(), f.mode, mtime)
		}
	}

	// getfattr -d outbox/proj/run.sh
	run := alice.path("outbox", "proj", "run.sh")
	waitXattr(t, run, "user.meshfs.bob", "verified")
	waitXattr(t, run, "user.meshfs.carol", "queued")
	waitXattr(t, run, "user.meshfs.state", "1 of 2 verified")
	sz, err := unix.Listxattr(run, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, sz)
	n, _ := unix.Listxattr(run, buf)
	if got := string(buf[:n]); got != "user.meshfs.bob\x00user.meshfs.carol\x00user.meshfs.state\x00" {
		t.Errorf("listxattr = %q", got)
	}

	carol.run("--join", bob.addr)
	for _, f := range files {
		waitFileContent(t, carol.path("inbox", "alice", f.rel), f.data)
	}
	waitFileContent(t, alice.path("sent", "proj", "run.sh"), files[0].data)
	waitGone(t, run)
	// The folder is the user's: it stays in outbox/, emptied.
	if fi, err := os.Stat(alice.path("outbox", "proj")); err != nil || !fi.IsDir() {
		t.Errorf("outbox/proj after delivery: %v, want the folder kept", err)
	}
}

// writeThroughMount creates p through the mount and sets mode and mtime
// before the last close, as cp -p does.
func writeThroughMount(t *testing.T, p string, data []byte, mode os.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestXferUnfinishedWriter: the node dies (kill -9) while a file in its
// outbox is open for writing; after a restart the cut-short file is not
// sent, and a complete copy later is.
func TestXferUnfinishedWriter(t *testing.T) {
	longTest(t)
	c := newCluster(t)
	alice := c.start("alice")
	bob := c.join("bob", alice)
	alice.waitConnected(bob)

	f, err := os.Create(alice.path("outbox", "cut.bin"))
	if err != nil {
		t.Fatal(err)
	}
	half := randomBytes(t, 1<<20)
	if _, err := f.Write(half); err != nil {
		t.Fatal(err)
	}
	waitXattr(t, alice.path("outbox", "cut.bin"), "user.meshfs.state", "being written")
	alice.cmd.Process.Kill()
	if _, err := alice.waitExit(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	f.Close() // on the dead mount: fails, and must not count as complete
	alice.kill()

	alice.run()
	marker := []byte("sent after the restart\n")
	if err := os.WriteFile(alice.path("outbox", "marker.txt"), marker, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFileContent(t, bob.path("inbox", "alice", "marker.txt"), marker)
	if _, err := os.Stat(bob.path("inbox", "alice", "cut.bin")); err == nil {
		t.Fatalf("the cut-short file was sent")
	}
	want := "not sent: it was still being written when meshfs stopped; copy it again"
	if got, err := xattr(alice.path("outbox", "cut.bin"), "user.meshfs.state"); got != want {
		t.Errorf("cut.bin state = %q, %v; want %q", got, err, want)
	}

	whole := append(half, randomBytes(t, 1<<20)...)
	if err := os.WriteFile(alice.path("outbox", "cut.bin"), whole, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFileContent(t, bob.path("inbox", "alice", "cut.bin"), whole)
}

// TestXferManySmallFiles drops 10,000 small files (2,000 under -race) into
// one outbox through the mount; both peers get all of them while every node keeps its peak
// memory (VmHWM) and its open file descriptors bounded.
func TestXferManySmallFiles(t *testing.T) {
	testutil.RequireFUSE(t)
	if testing.Short() {
		t.Skip("10,000 files through three processes")
	}
	count := 10000
	if raceEnabled {
		// Race-built nodes take about 4 minutes for 10,000 files on 2
		// cores; make test runs 2,000 (same code paths, same bounds).
		// Without -race the full 10,000 take about 60 s.
		count = 2000
	}
	manyRel := func(i int) string { return fmt.Sprintf("many/d%02d/f%05d.txt", i/perFolder, i) }
	c := newCluster(t)
	m := c.fullMesh("alice", "bob", "carol")
	alice, bob, carol := m[0], m[1], m[2]
	nodes := []*node{alice, bob, carol}

	peakFDs := make([]int, len(nodes))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // sample the fds of every node until the files are in
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for i, n := range nodes {
				peakFDs[i] = max(peakFDs[i], countFDs(n.cmd.Process.Pid))
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	start := time.Now()
	content := func(i int) []byte { return fmt.Appendf(nil, "small file %05d\n", i) }
	for i := range count { // folder by folder, as cp -r writes a tree
		p := alice.path("outbox", manyRel(i))
		if i%perFolder == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(p, content(i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wrote := time.Since(start)
	for _, n := range []*node{bob, carol} {
		waitCount(t, n.path("inbox", "alice", "many"), count, 5*time.Minute)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d files: written through the mount in %s, at both peers after %s", count, wrote, time.Since(start))

	for _, i := range []int{0, count / 2, count - 1} {
		rel := manyRel(i)
		for _, n := range []*node{bob, carol} {
			if got, err := os.ReadFile(n.path("inbox", "alice", rel)); err != nil || !bytes.Equal(got, content(i)) {
				t.Errorf("%s at %s: %q, %v", rel, n.name, got, err)
			}
		}
	}
	memLimit := uint64(256 << 20)
	if raceEnabled {
		memLimit *= 4 // the race detector's shadow memory
	}
	for i, n := range nodes {
		hwm := vmHWM(t, n.cmd.Process.Pid)
		t.Logf("%s: peak memory %d MiB, peak open fds %d", n.name, hwm>>20, peakFDs[i])
		if hwm > memLimit {
			t.Errorf("%s: VmHWM %d MiB, want < %d MiB", n.name, hwm>>20, memLimit>>20)
		}
		if peakFDs[i] >= 200 {
			t.Errorf("%s: %d open fds at peak, want < 200", n.name, peakFDs[i])
		}
	}
}

// perFolder is how many of the 10,000 files share a folder.
const perFolder = 500

// countFDs counts the open file descriptors of process pid.
func countFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// vmHWM returns the peak resident set size of process pid in bytes.
func vmHWM(t *testing.T, pid int) uint64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		var kb uint64
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// waitCount polls until the tree under dir holds want regular files.
func waitCount(t *testing.T, dir string, want int, d time.Duration) {
	t.Helper()
	err := testutil.WaitFor(d, func() error {
		got := 0
		filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				got++
			}
			return nil
		})
		if got != want {
			return fmt.Errorf("%s: %d files, want %d", dir, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestXferFullDiskReceiver: carol's state folder is a 48 MiB tmpfs and
// alice sends 64 MiB. bob gets it; carol refuses it with a reason alice
// shows in words, nothing of it appears at carol, alice keeps it queued
// for her, and carol's node stays up and keeps talking.
func TestXferFullDiskReceiver(t *testing.T) {
	longTest(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	c := newCluster(t)
	alice := c.start("alice")
	bob := c.join("bob", alice)
	small := filepath.Join(c.dir, "carol", "state")
	mountTmpfs(t, small, "48m")
	carol := c.join("carol", alice)
	alice.waitConnected(bob, carol)
	bob.waitConnected(carol)

	src := filepath.Join(c.dir, "too-big.bin")
	writeRandomFile(t, src, 64<<20)
	if out, err := exec.Command("cp", src, alice.path("outbox", "too-big.bin")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	waitSize(t, bob.path("inbox", "alice", "too-big.bin"), 64<<20, time.Minute)
	if fileSum(t, bob.path("inbox", "alice", "too-big.bin")) != fileSum(t, src) {
		t.Error("bob's too-big.bin differs from the source")
	}
	queued := alice.path("outbox", "too-big.bin")
	err := testutil.WaitFor(30*time.Second, func() error {
		got, err := xattr(queued, "user.meshfs.carol")
		if err != nil || !strings.HasPrefix(got, "refused: no space left on carol's disk") {
			return fmt.Errorf("carol's delivery state is %q, %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := carol.exited(); ok {
		t.Fatalf("carol's node ended on a full disk: %v", err)
	}
	if _, err := os.Stat(carol.path("inbox", "alice", "too-big.bin")); err == nil {
		t.Error("too-big.bin appeared at carol")
	}
	if _, err := os.Stat(queued); err != nil {
		t.Errorf("alice no longer keeps too-big.bin queued for carol: %v", err)
	}
	line := fmt.Sprintf("still talking %d", time.Now().UnixNano())
	say(t, carol, line+"\n")
	waitContains(t, alice.path("chat"), "carol: "+line)
}

// mountTmpfs mounts a tmpfs of size at dir until the test ends (after the
// nodes using it have stopped: cleanups run last first).
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
}
