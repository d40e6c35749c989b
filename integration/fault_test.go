//go:build linux

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// testNet is a two-host network the test makes for itself: network
// namespaces "hub" and "far", joined by a veth pair (hubIP in hub, farIP in
// far). Every address lives inside a namespace the test created, so no
// traffic touches the machine's own interfaces. Taking the hub end down
// cuts every connection across the pair without a reset (a stalled link, as
// when a laptop loses its network); up heals it.
type testNet struct {
	t            *testing.T
	hub, far     string // namespace names
	hubDev       string
	hubIP, farIP string
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("the ip command (iproute2) is needed for the fault tests")
	}
	id := os.Getpid() % 100000
	n := &testNet{t: t, hub: fmt.Sprintf("meshfs-hub-%d", id), far: fmt.Sprintf("meshfs-far-%d", id),
		hubDev: fmt.Sprintf("mfh%d", id), hubIP: "10.213.7.1", farIP: "10.213.7.2"}
	farDev := fmt.Sprintf("mff%d", id)
	for _, ns := range []string{n.hub, n.far} {
		n.ip("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		n.ip("-n", ns, "link", "set", "lo", "up")
	}
	n.ip("-n", n.hub, "link", "add", n.hubDev, "type", "veth", "peer", "name", farDev, "netns", n.far)
	n.ip("-n", n.hub, "addr", "add", n.hubIP+"/24", "dev", n.hubDev)
	n.ip("-n", n.far, "addr", "add", n.farIP+"/24", "dev", farDev)
	n.ip("-n", n.hub, "link", "set", n.hubDev, "up")
	n.ip("-n", n.far, "link", "set", farDev, "up")
	return n
}

func (n *testNet) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// link takes the hub end of the pair down or up.
func (n *testNet) link(up bool) {
	state := "down"
	if up {
		state = "up"
	}
	n.ip("-n", n.hub, "link", "set", n.hubDev, state)
}

// startIn is cluster.start for a node whose process runs inside the
// network namespace ns. 'ip netns exec' also gives the process its own
// mount namespace, so such nodes run with --no-fuse.
func (c *cluster) startIn(ns, name string, flags ...string) *node {
	c.t.Helper()
	saved := meshfsBin
	meshfsBin = c.wrapperIn(ns) // run() execs meshfsBin; restored before any other start
	defer func() { meshfsBin = saved }()
	return c.start(name, flags...)
}

// wrapperIn writes (once) and returns a script that runs meshfs in
// namespace ns.
func (c *cluster) wrapperIn(ns string) string {
	c.t.Helper()
	wrapper := filepath.Join(c.dir, "meshfs-in-"+ns)
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns, meshfsBin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		c.t.Fatal(err)
	}
	return wrapper
}

// TestFaultCutOffMemberHeals: alice and bob run in one network namespace,
// carol in another, joined by a veth pair the test made. The link stalls (no reset, no FIN) long enough for alice and bob to
// declare her dead; a file alice shares meanwhile reaches bob and waits
// for carol. When the link comes back the mesh is full again and carol
// gets the queued file; alice moves it to sent/ only then.
func TestFaultCutOffMemberHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the dead-peer timeout")
	}
	net := newTestNet(t)
	c := newCluster(t)
	hub := []string{"--no-fuse", "--listen", net.hubIP + ":0"}
	alice := c.startIn(net.hub, "alice", hub...)
	bob := c.startIn(net.hub, "bob", append(hub, "--join", alice.addr, "--invite", alice.invite())...)
	carol := c.startIn(net.far, "carol", "--no-fuse", "--listen", net.farIP+":0", "--join", alice.addr,
		"--invite", alice.invite())
	alice.waitConnected(bob, carol)
	bob.waitConnected(carol)
	carol.waitConnected(alice, bob)

	start := time.Now()
	net.link(false)
	data := randomBytes(t, 3<<20+11)
	if err := os.WriteFile(alice.path("outbox", "queued.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFileContent(t, bob.path("inbox", "alice", "queued.bin"), data)
	waitOffline(t, alice, "carol", 2*time.Minute)
	waitOffline(t, bob, "carol", 2*time.Minute)
	t.Logf("cut detected after %v", time.Since(start).Round(time.Second))
	if _, err := os.Stat(alice.path("outbox", "queued.bin")); err != nil {
		t.Fatalf("queued.bin left outbox/ while carol was cut off: %v", err)
	}

	healed := time.Now()
	net.link(true)
	alice.waitConnected(carol)
	bob.waitConnected(carol)
	carol.waitConnected(alice, bob)
	t.Logf("full mesh again %v after the link came back", time.Since(healed).Round(time.Millisecond))
	waitFileContent(t, carol.path("inbox", "alice", "queued.bin"), data)
	waitGone(t, alice.path("outbox", "queued.bin"))
	got, err := os.ReadFile(alice.path("sent", "queued.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("sent/queued.bin: %v", err)
	}
	t.Logf("queued file delivered %v after the link came back", time.Since(healed).Round(time.Millisecond))
}

// waitOffline polls until n's peers file no longer shows other connected.
func waitOffline(t *testing.T, n *node, other string, within time.Duration) {
	t.Helper()
	err := testutil.WaitFor(within, func() error {
		l := n.peerLine(other)
		if l == "" {
			return errors.New("not listed")
		}
		if strings.Contains(l, "connected") {
			return fmt.Errorf("%s still shows %s connected: %q", n.name, other, l)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
