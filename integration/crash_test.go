//go:build linux

package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// withEnv starts a node with extra environment variables for this run
// only (restarts use the cluster's environment).
func (c *cluster) withEnv(extra []string, start func() *node) *node {
	saved := c.env
	c.env = append(slices.Clone(saved), extra...)
	defer func() { c.env = saved }()
	return start()
}

// waitExit waits for the node's process to end and returns its exit code.
func (n *node) waitExit(d time.Duration) (int, error) {
	select {
	case err := <-n.exit:
		n.exit <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), nil
		}
		return 0, err
	case <-time.After(d):
		return 0, fmt.Errorf("%s still running after %s", n.name, d)
	}
}

// TestCrashReceiver: the receiver dies (exit 137, like kill -9) at each
// failpoint of placing a file: after writing a block, after the fsync of
// the complete partial, after its rename into inbox/ (before the folder
// fsync). Restarted without the failpoint, it ends with exactly one final
// file, byte-identical, no numbered duplicate and no partial left; the
// sender gets its ACK and moves the file to sent/.
func TestCrashReceiver(t *testing.T) {
	testutil.RequireFUSE(t)
	if testing.Short() {
		t.Skip("restarts processes")
	}
	for _, fp := range []string{"after-write", "after-fsync", "after-rename"} {
		t.Run(fp, func(t *testing.T) {
			c := newCluster(t)
			alice := c.start("alice")
			bob := c.withEnv([]string{"MESHFS_FAILPOINT=" + fp}, func() *node { return c.join("bob", alice) })
			alice.waitConnected(bob)

			data := randomBytes(t, 3<<20+4321)
			if err := os.WriteFile(alice.path("outbox", "crash.bin"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			code, err := bob.waitExit(60 * time.Second)
			if err != nil || code != 137 {
				t.Fatalf("bob at failpoint %s: exit code %d, err %v; want 137", fp, code, err)
			}
			bob.kill() // clears the dead mount
			got := finalFiles(t, bob)
			switch {
			case fp != "after-rename" && len(got) != 0:
				t.Errorf("after the crash, inbox shows %v; want nothing before the rename", got)
			case fp == "after-rename":
				// Renamed only after its fsync: already whole under its name.
				final := filepath.Join(bob.state, "tree", "inbox", "alice", "crash.bin")
				if b, err := os.ReadFile(final); err != nil || !bytes.Equal(b, data) {
					t.Errorf("after a crash past the rename, %s: %d bytes, err %v; want the whole file", final, len(b), err)
				}
			}

			bob.run("--join", alice.addr)
			waitFileContent(t, bob.path("inbox", "alice", "crash.bin"), data)
			waitGone(t, alice.path("outbox", "crash.bin"))
			waitFileContent(t, alice.path("sent", "crash.bin"), data)
			if got := finalFiles(t, bob); !slices.Equal(got, []string{"alice/crash.bin"}) {
				t.Errorf("bob's inbox = %v, want exactly alice/crash.bin", got)
			}
			waitNoPartials(t, bob)
		})
	}
}

// finalFiles lists the files under n's inbox in its backing tree, hidden
// partials excluded, as "folder/name".
func finalFiles(t *testing.T, n *node) []string {
	t.Helper()
	inbox := filepath.Join(n.state, "tree", "inbox")
	var out []string
	filepath.WalkDir(inbox, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".meshfs") {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(inbox, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// waitNoPartials polls until n's hidden partials folder holds no partial
// data file, and checks the mount shows no partial name.
func waitNoPartials(t *testing.T, n *node) {
	t.Helper()
	parts := filepath.Join(n.state, "tree", "inbox", ".meshfs-partials")
	err := testutil.WaitFor(30*time.Second, func() error {
		left, _ := filepath.Glob(filepath.Join(parts, "*.part"))
		if len(left) != 0 {
			return fmt.Errorf("partials left: %v", left)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	ents, err := os.ReadDir(n.path("inbox"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".meshfs") {
			t.Errorf("the mount shows %s in inbox/", e.Name())
		}
	}
}

// TestKillMidTransfer: kill -9 of the sender, then of a receiver, each in
// the middle of one large file; after restarts both receivers have it
// intact, once, with no partial left, and the sender moves it to sent/.
// Peak memory stays far below the file's size on every node.
func TestKillMidTransfer(t *testing.T) {
	longTest(t)
	c := newCluster(t)
	m := c.fullMesh("alice", "bob", "carol")
	alice, bob, carol := m[0], m[1], m[2]
	src := filepath.Join(c.dir, "big.bin")
	const size = 256 << 20
	writeRandomFile(t, src, size)
	if out, err := exec.Command("cp", src, alice.path("outbox", "big.bin")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}

	waitReceiving(t, bob, "big.bin", 0)
	killNow(t, alice)
	// Once bob sees alice offline his transfer from her is over; the next
	// one he shows is the restarted sender resuming it.
	waitPeerState(t, bob, "alice", "offline")
	alice.run()
	done := waitReceiving(t, bob, "big.bin", 0)
	killNow(t, bob)
	bob.run("--join", alice.addr)
	t.Logf("bob had %d MiB when he was killed", done>>20)

	want := fileSum(t, src)
	for _, n := range []*node{bob, carol} {
		p := n.path("inbox", "alice", "big.bin")
		waitSize(t, p, size, 5*time.Minute)
		if fileSum(t, p) != want {
			t.Errorf("%s's big.bin differs from the source", n.name)
		}
		if got := finalFiles(t, n); !slices.Equal(got, []string{"alice/big.bin"}) {
			t.Errorf("%s's inbox = %v, want exactly alice/big.bin", n.name, got)
		}
		waitNoPartials(t, n)
	}
	waitSize(t, alice.path("sent", "big.bin"), size, time.Minute)
	limit := uint64(size / 2)
	if raceEnabled {
		limit *= 4 // the race detector's shadow memory
	}
	for _, n := range m {
		if hwm := vmHWM(t, n.cmd.Process.Pid); hwm > limit {
			t.Errorf("%s: peak memory %d MiB for a %d MiB file, want < %d MiB", n.name, hwm>>20, size>>20, limit>>20)
		}
	}
}

// killNow kills n with SIGKILL, as kill -9 does, and clears its dead mount.
func killNow(t *testing.T, n *node) {
	t.Helper()
	n.cmd.Process.Kill()
	if _, err := n.waitExit(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	n.kill()
}

// waitReceiving polls n's status until it is receiving name with more than
// after bytes held (and the file is not complete yet), and returns them.
func waitReceiving(t *testing.T, n *node, name string, after int64) int64 {
	t.Helper()
	var held int64
	err := pollFast(time.Minute, func() bool {
		out, err := n.c.meshfs("status", "--json", n.mnt)
		if err != nil {
			return false
		}
		var st struct {
			Transfers []struct {
				Path, Direction string
				Done, Size      int64
			}
		}
		if json.Unmarshal([]byte(out), &st) != nil {
			return false
		}
		for _, tr := range st.Transfers {
			if tr.Direction == "receive" && filepath.Base(tr.Path) == name && tr.Done > after && tr.Done < tr.Size {
				held = tr.Done
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("%s never showed %s half received: %v", n.name, name, err)
	}
	return held
}

// waitSize polls until p exists with size bytes.
func waitSize(t *testing.T, p string, size int64, d time.Duration) {
	t.Helper()
	err := testutil.WaitFor(d, func() error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Size() != size {
			return fmt.Errorf("%s: %d of %d bytes", p, fi.Size(), size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// writeRandomFile writes size random bytes to p.
func writeRandomFile(t *testing.T, p string, size int64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
