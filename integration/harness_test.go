//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// meshfsBin is the binary every test runs, built once by TestMain.
var meshfsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meshfs-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	meshfsBin = filepath.Join(dir, "meshfs")
	args := []string{"build", "-o", meshfsBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/meshfs")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build meshfs:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fuseSuperMagic is statfs's f_type of a FUSE mount.
const fuseSuperMagic = 0x65735546

// cluster is a set of nodes sharing one XDG_STATE_HOME (where control
// sockets live) inside the test's temp folder.
type cluster struct {
	t   *testing.T
	dir string
	env []string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	dir := t.TempDir()
	return &cluster{t: t, dir: dir, env: append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "xdg"))}
}

// node is one running 'meshfs mount' process.
type node struct {
	c     *cluster
	name  string
	mnt   string
	state string
	plain bool
	cmd   *exec.Cmd
	addr  string // listen address from the banner
	exit  chan error
	out   lockedBuffer // stdout: the banner
	log   lockedBuffer // stderr: the log, also copied to the test's output
}

// lockedBuffer collects a process's stdout for the banner.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var listenLine = regexp.MustCompile(`(?m)^\s*listen\s+(\S+)`)

// start mounts a new node named name with extra flags and waits until its
// tree is served and it printed its listen address.
func (c *cluster) start(name string, flags ...string) *node {
	c.t.Helper()
	n := &node{c: c, name: name, mnt: filepath.Join(c.dir, name, "mnt"), state: filepath.Join(c.dir, name, "state")}
	n.plain = contains(flags, "--no-fuse")
	for _, d := range []string{n.mnt, n.state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			c.t.Fatal(err)
		}
	}
	n.run(flags...)
	return n
}

func (n *node) run(flags ...string) {
	t := n.c.t
	t.Helper()
	args := append([]string{"mount", n.mnt, "--listen", "127.0.0.1:0", "--state", n.state, "--name", n.name}, flags...)
	n.cmd = exec.Command(meshfsBin, args...)
	n.cmd.Env = n.c.env
	n.out, n.log = lockedBuffer{}, lockedBuffer{}
	n.cmd.Stdout = &n.out
	n.cmd.Stderr = io.MultiWriter(prefixWriter(t, n.name), &n.log)
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", n.name, err)
	}
	n.exit = make(chan error, 1)
	go func() { n.exit <- n.cmd.Wait() }()
	t.Cleanup(n.kill)
	err := testutil.WaitFor(30*time.Second, func() error {
		if ok, err := n.exited(); ok {
			return fmt.Errorf("exited: %v", err)
		}
		m := listenLine.FindStringSubmatch(n.out.String())
		if m == nil {
			return errors.New("no listen address printed yet")
		}
		n.addr = m[1]
		return n.served()
	})
	if err != nil {
		t.Fatalf("node %s did not come up: %v", n.name, err)
	}
}

// exited reports whether the process has ended, and how, without waiting.
func (n *node) exited() (bool, error) {
	select {
	case err := <-n.exit:
		n.exit <- err
		return true, err
	default:
		return false, nil
	}
}

// served reports whether the node's tree is ready: a FUSE mount (statfs
// magic) or, in plain mode, the peers file.
func (n *node) served() error {
	if n.plain {
		_, err := os.Stat(filepath.Join(n.mnt, "peers"))
		return err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.mnt, &st); err != nil {
		return err
	}
	if st.Type != fuseSuperMagic {
		return errors.New("not a FUSE mount yet")
	}
	return nil
}

// stop sends sig and waits for the process to exit, returning its error.
func (n *node) stop(sig os.Signal) error {
	n.c.t.Helper()
	n.cmd.Process.Signal(sig)
	select {
	case err := <-n.exit:
		n.exit <- err
		return err
	case <-time.After(30 * time.Second):
		n.kill()
		return errors.New("did not exit within 30s of the signal")
	}
}

// kill ends the process if it still runs and clears its mount; cleanup.
func (n *node) kill() {
	select {
	case err := <-n.exit:
		n.exit <- err
	default:
		n.cmd.Process.Kill()
		n.exit <- <-n.exit
	}
	if mounted(n.mnt) {
		exec.Command("fusermount3", "-u", "-z", n.mnt).Run()
		syscall.Unmount(n.mnt, syscall.MNT_DETACH)
	}
}

// mounted reports whether mnt is listed in /proc/mounts.
func mounted(mnt string) bool {
	data, _ := os.ReadFile("/proc/mounts")
	return strings.Contains(string(data), " "+mnt+" ")
}

// meshfs runs a one-shot command (invite, status, ...) and returns stdout.
func (c *cluster) meshfs(args ...string) (string, error) {
	cmd := exec.Command(meshfsBin, args...)
	cmd.Env = c.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("meshfs %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// invite asks n (the admin) for a token.
func (n *node) invite() string {
	n.c.t.Helper()
	out, err := n.c.meshfs("invite", n.mnt)
	if err != nil {
		n.c.t.Fatal(err)
	}
	return lastLine(out)
}

// lastLine is the last line of a command's output: an invite's token.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

// join starts a node that joins through admin with a fresh invite.
func (c *cluster) join(name string, admin *node, flags ...string) *node {
	c.t.Helper()
	tok := admin.invite()
	return c.start(name, append([]string{"--join", admin.addr, "--invite", tok}, flags...)...)
}

// fullMesh starts the first name as a new mesh's admin, joins the others
// through it with invites, and waits until every node shows every other as
// connected: the later ones can only have found each other by discovery.
func (c *cluster) fullMesh(names ...string) []*node {
	c.t.Helper()
	nodes := []*node{c.start(names[0])}
	for _, name := range names[1:] {
		nodes = append(nodes, c.join(name, nodes[0]))
	}
	for _, n := range nodes {
		for _, o := range nodes {
			if o != n {
				n.waitConnected(o)
			}
		}
	}
	return nodes
}

// longTest skips t under -short, and when FUSE is unavailable outside CI.
func longTest(t *testing.T) {
	t.Helper()
	testutil.RequireFUSE(t)
	if testing.Short() {
		t.Skip("starts and restarts several processes")
	}
}

// path returns a path inside the node's tree.
func (n *node) path(elem ...string) string {
	return filepath.Join(append([]string{n.mnt}, elem...)...)
}

// peerLine returns the line of n's peers file whose NAME is other; other
// names appear in lines of their own too (PATH "through other").
func (n *node) peerLine(other string) string {
	data, _ := os.ReadFile(n.path("peers"))
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == other {
			return strings.TrimSuffix(line, "\n")
		}
	}
	return ""
}

// waitConnected polls until n's peers file shows each other as connected.
func (n *node) waitConnected(others ...*node) {
	n.c.t.Helper()
	for _, o := range others {
		err := testutil.WaitFor(30*time.Second, func() error {
			if l := n.peerLine(o.name); !strings.Contains(l, "connected") {
				return fmt.Errorf("%s's peers line for %s: %q", n.name, o.name, l)
			}
			return nil
		})
		if err != nil {
			n.c.t.Fatal(err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// prefixWriter sends a process's log lines to the test output, prefixed
// with the node's name.
func prefixWriter(t *testing.T, name string) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := t.Output()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := bufio.NewScanner(r)
		s.Buffer(make([]byte, 64<<10), 1<<20)
		for s.Scan() {
			fmt.Fprintf(out, "%s: %s\n", name, s.Text())
		}
	}()
	t.Cleanup(func() { w.Close(); <-done; r.Close() })
	return w
}
