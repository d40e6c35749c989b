//go:build linux

package integration

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// TestCoreMesh is the whole user story on three real processes: create a
// mesh, invite two members, let discovery complete the full mesh, send a file
// with cp semantics, talk in chat, and unmount on SIGTERM.
func TestCoreMesh(t *testing.T) {
	testutil.RequireFUSE(t)
	c := newCluster(t)
	m := c.fullMesh("alice", "bob", "carol")
	alice, bob, carol := m[0], m[1], m[2]

	t.Run("the tree", func(t *testing.T) {
		for _, name := range []string{"outbox", "inbox", "sent", "chat", "peers"} {
			if _, err := os.Stat(alice.path(name)); err != nil {
				t.Errorf("the mount has no %s: %v", name, err)
			}
		}
	})

	t.Run("file reaches every member", func(t *testing.T) {
		data := randomBytes(t, 3<<20+12345)
		if err := os.WriteFile(alice.path("outbox", "blob.bin"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, n := range []*node{bob, carol} {
			waitFileContent(t, n.path("inbox", "alice", "blob.bin"), data)
		}
		waitGone(t, alice.path("outbox", "blob.bin"))
		waitFileContent(t, alice.path("sent", "blob.bin"), data)
	})

	t.Run("no partial file is ever visible in an inbox", func(t *testing.T) {
		data := randomBytes(t, 20<<20)
		stop := watchPartials(t, int64(len(data)), bob.path("inbox", "alice"), carol.path("inbox", "alice"))
		if err := os.WriteFile(alice.path("outbox", "watched.bin"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, n := range []*node{bob, carol} {
			waitFileContent(t, n.path("inbox", "alice", "watched.bin"), data)
		}
		for _, seen := range stop() {
			t.Errorf("visible while it arrived: %s", seen)
		}
	})

	t.Run("a second file of the same name never overwrites the first", func(t *testing.T) {
		for _, text := range []string{"first\n", "second\n"} {
			if err := os.WriteFile(alice.path("outbox", "same.txt"), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			waitGone(t, alice.path("outbox", "same.txt")) // delivered before the next one
		}
		waitFileContent(t, bob.path("inbox", "alice", "same (1).txt"), []byte("second\n"))
		waitFileContent(t, bob.path("inbox", "alice", "same.txt"), []byte("first\n"))
	})

	t.Run("chat reaches every member", func(t *testing.T) {
		msg := fmt.Sprintf("hello from bob %d", time.Now().UnixNano())
		if err := os.WriteFile(bob.path("chat"), []byte(msg+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, n := range []*node{alice, bob, carol} {
			waitContains(t, n.path("chat"), "bob: "+msg)
		}
	})

	t.Run("inbox refuses new files", func(t *testing.T) {
		err := os.WriteFile(bob.path("inbox", "alice", "forged.txt"), []byte("x"), 0o644)
		if !errors.Is(err, syscall.EPERM) {
			t.Errorf("create in inbox: err = %v, want EPERM", err)
		}
	})

	for _, n := range []*node{alice, bob, carol} {
		if err := n.stop(syscall.SIGTERM); err != nil {
			t.Errorf("%s: exit after SIGTERM: %v", n.name, err)
		}
		if mounted(n.mnt) {
			t.Errorf("%s: %s still mounted after exit", n.name, n.mnt)
		}
	}
}

// TestUsedInviteIsRefused: a token admits one node; a second use ends the
// command with a non-zero exit and one clear line, and admits no one. With
// no invite open, alice refuses joiners in the TLS handshake, so the line
// can only say the invite was refused; while another invite is open she
// reads the JOIN and says it was used.
func TestUsedInviteIsRefused(t *testing.T) {
	testutil.RequireFUSE(t)
	c := newCluster(t)
	alice := c.start("alice")
	tok := alice.invite()
	c.start("bob", "--join", alice.addr, "--invite", tok)
	for _, tc := range []struct{ name, want string }{
		{"mallory", "invite refused"},
		{"mallory2", "invite already used"},
	} {
		if tc.name == "mallory2" {
			alice.invite()
		}
		out, err := c.meshfsMount(tc.name, "--join", alice.addr, "--invite", tok)
		if err == nil {
			t.Fatalf("%s: mount with a used invite succeeded: %s", tc.name, out)
		}
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: error output %q does not say %q", tc.name, out, tc.want)
		}
		if strings.Contains(out, "goroutine") || strings.Count(strings.TrimSpace(out), "\n") > 2 {
			t.Errorf("%s: error output is not one clear line: %q", tc.name, out)
		}
		if l := alice.peerLine(tc.name); l != "" {
			t.Errorf("alice lists %s: %q", tc.name, l)
		}
	}
}

// meshfsMount runs a mount command expected to fail and returns its stderr.
func (c *cluster) meshfsMount(name string, flags ...string) (string, error) {
	mnt, state := c.dir+"/"+name+"/mnt", c.dir+"/"+name+"/state"
	os.MkdirAll(mnt, 0o700)
	args := append([]string{"mount", mnt, "--listen", "127.0.0.1:0", "--state", state, "--name", name}, flags...)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		defer close(done)
		_, err = c.meshfs(args...)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		return "", errors.New("mount with a bad invite did not exit within 60s")
	}
	if err != nil {
		out = []byte(err.Error())
	}
	return string(out), err
}

// watchPartials samples the folders every millisecond until the returned
// stop is called, which lists what it saw that a reader must never see: a
// hidden or .part name, or watched.bin at a size other than size.
func watchPartials(t *testing.T, size int64, dirs ...string) (stop func() []string) {
	quit, done := make(chan struct{}), make(chan struct{})
	var seen []string
	go func() {
		defer close(done)
		for {
			for _, dir := range dirs {
				seen = append(seen, partialsIn(dir, size)...)
			}
			select {
			case <-quit:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	var once sync.Once
	stop = func() []string {
		once.Do(func() { close(quit); <-done })
		return seen
	}
	t.Cleanup(func() { stop() })
	return stop
}

// partialsIn lists dir's entries that show a file still arriving.
func partialsIn(dir string, size int64) []string {
	ents, _ := os.ReadDir(dir)
	var bad []string
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".part") {
			bad = append(bad, filepath.Join(dir, name))
		}
		if name != "watched.bin" {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Size() != size {
			bad = append(bad, fmt.Sprintf("%s at %d of %d bytes", filepath.Join(dir, name), fi.Size(), size))
		}
	}
	return bad
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func waitFileContent(t *testing.T, path string, want []byte) {
	t.Helper()
	err := testutil.WaitFor(60*time.Second, func() error {
		got, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s: %d bytes, want %d identical bytes", path, len(got), len(want))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitContains(t *testing.T, path, want string) {
	t.Helper()
	err := testutil.WaitFor(20*time.Second, func() error {
		got, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.Contains(string(got), want) {
			return fmt.Errorf("%s does not contain %q", path, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitGone(t *testing.T, path string) {
	t.Helper()
	err := testutil.WaitFor(30*time.Second, func() error {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s still exists", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNoFUSEIsExplained: where /dev/fuse is missing (here hidden in a private
// mount namespace), 'meshfs mount' says so in one line and suggests
// --no-fuse (TestPlainFolderMixesWithFUSE shows that mode at work).
func TestNoFUSEIsExplained(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("hiding /dev/fuse in a mount namespace needs root")
	}
	c := newCluster(t)
	mnt, state := c.dir+"/nofuse/mnt", c.dir+"/nofuse/state"
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	script := `mount -t tmpfs none /dev && exec "$0" "$@"`
	cmd := exec.Command("unshare", "-m", "sh", "-c", script, meshfsBin,
		"mount", mnt, "--state", state, "--listen", "127.0.0.1:0")
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("mount without /dev/fuse succeeded: %s", out)
	}
	msg := strings.TrimSpace(string(out))
	if strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "FUSE is unavailable") || !strings.Contains(msg, "--no-fuse") {
		t.Errorf("output = %q, want one line saying FUSE is unavailable and suggesting --no-fuse", msg)
	}
}
