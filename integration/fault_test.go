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

// netns is a network namespace made by the test, joined to the host by a
// veth pair: hostIP on the host side, nsIP inside. Taking the host side
// down cuts every connection of the processes inside without a reset (a
// stalled link, as when a laptop loses its network); up heals it.
type netns struct {
	t            *testing.T
	name, veth   string
	hostIP, nsIP string
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command")
	}
	id := os.Getpid() % 100000
	n := &netns{t: t, name: fmt.Sprintf("meshfs-fault-%d", id), veth: fmt.Sprintf("mfh%d", id),
		hostIP: "10.213.7.1", nsIP: "10.213.7.2"}
	n.ip("netns", "add", n.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	peer := fmt.Sprintf("mfc%d", id)
	n.ip("link", "add", n.veth, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { exec.Command("ip", "link", "del", n.veth).Run() })
	n.ip("link", "set", peer, "netns", n.name)
	n.ip("addr", "add", n.hostIP+"/24", "dev", n.veth)
	n.ip("link", "set", n.veth, "up")
	n.ip("netns", "exec", n.name, "ip", "addr", "add", n.nsIP+"/24", "dev", peer)
	n.ip("netns", "exec", n.name, "ip", "link", "set", peer, "up")
	n.ip("netns", "exec", n.name, "ip", "link", "set", "lo", "up")
	return n
}

func (n *netns) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// link takes the host side of the pair down or up.
func (n *netns) link(up bool) {
	state := "down"
	if up {
		state = "up"
	}
	n.ip("link", "set", n.veth, state)
}

// startIn is cluster.start for a node whose process runs inside ns.
func (c *cluster) startIn(ns *netns, name string, flags ...string) *node {
	c.t.Helper()
	saved := meshfsBin
	wrapper := filepath.Join(c.dir, "meshfs-in-"+ns.name)
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", ns.name, saved)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		c.t.Fatal(err)
	}
	meshfsBin = wrapper // run() execs meshfsBin; restored before any other start
	defer func() { meshfsBin = saved }()
	return c.start(name, flags...)
}

// TestFaultCutOffMemberHeals: carol runs in her own network namespace.
// Her link stalls (no reset, no FIN) long enough for alice and bob to
// declare her dead; a file alice shares meanwhile reaches bob and waits
// for carol. When the link comes back the mesh is full again and carol
// gets the queued file; alice moves it to sent/ only then.
func TestFaultCutOffMemberHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the dead-peer timeout")
	}
	ns := newNetns(t)
	c := newCluster(t)
	listen := []string{"--no-fuse", "--listen", ns.hostIP + ":0"}
	alice := c.start("alice", listen...)
	bob := c.join("bob", alice, listen...)
	tok := alice.invite()
	carol := c.startIn(ns, "carol", "--no-fuse", "--listen", ns.nsIP+":0", "--join", alice.addr, "--invite", tok)
	alice.waitConnected(bob, carol)
	bob.waitConnected(carol)
	carol.waitConnected(alice, bob)

	start := time.Now()
	ns.link(false)
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
	ns.link(true)
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
