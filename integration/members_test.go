//go:build linux

package integration

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// TestOfflineMemberCatchesUp: a member that is down while a file is sent and
// a line is said gets both when it comes back; until then the file stays in
// the sender's outbox.
func TestOfflineMemberCatchesUp(t *testing.T) {
	longTest(t)
	c := newCluster(t)
	m := c.fullMesh("alice", "bob", "carol")
	alice, bob, carol := m[0], m[1], m[2]

	if err := carol.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitPeerState(t, alice, "carol", "offline")
	data := randomBytes(t, 1<<20+7)
	if err := os.WriteFile(alice.path("outbox", "while-away.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("said while carol was away %d", time.Now().UnixNano())
	if err := os.WriteFile(bob.path("chat"), []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFileContent(t, bob.path("inbox", "alice", "while-away.bin"), data)
	if _, err := os.Stat(alice.path("outbox", "while-away.bin")); err != nil {
		t.Fatalf("the file left outbox/ before carol had it: %v", err)
	}

	carol.run("--join", bob.addr) // state is kept: no invite needed
	waitFileContent(t, carol.path("inbox", "alice", "while-away.bin"), data)
	waitContains(t, carol.path("chat"), line)
	waitGone(t, alice.path("outbox", "while-away.bin"))
	chat, _ := os.ReadFile(carol.path("chat"))
	if n := strings.Count(string(chat), line); n != 1 {
		t.Errorf("carol's chat shows the line %d times, want once", n)
	}
}

// TestRemovedMemberStaysOut: after 'meshfs remove', every member drops the
// removed node, and it cannot reconnect after a restart.
func TestRemovedMemberStaysOut(t *testing.T) {
	longTest(t)
	c := newCluster(t)
	m := c.fullMesh("alice", "bob", "carol")
	alice, bob, carol := m[0], m[1], m[2]

	if _, err := c.meshfs("remove", alice.mnt, "carol"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{alice, bob} {
		waitNotConnected(t, n, "carol")
	}
	carol.stop(syscall.SIGTERM)
	carol.run("--join", bob.addr)
	// Polling for an absence: give carol's redial loop time to try, then check.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range []*node{alice, bob} {
			if strings.Contains(n.peerLine("carol"), "connected") {
				t.Fatalf("%s shows removed carol connected again", n.name)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestPlainFolderMixesWithFUSE: a --no-fuse node is a full member: files and
// chat cross in both directions.
func TestPlainFolderMixesWithFUSE(t *testing.T) {
	testutil.RequireFUSE(t)
	c := newCluster(t)
	alice := c.start("alice")
	bob := c.join("bob", alice, "--no-fuse")
	alice.waitConnected(bob)
	bob.waitConnected(alice)
	if mounted(bob.mnt) {
		t.Fatal("--no-fuse mounted FUSE")
	}

	data := randomBytes(t, 2<<20)
	if err := os.WriteFile(bob.path("outbox", "from-bob.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFileContent(t, alice.path("inbox", "bob", "from-bob.bin"), data)
	waitGone(t, bob.path("outbox", "from-bob.bin"))

	if err := os.WriteFile(alice.path("outbox", "to-bob.txt"), []byte("hi bob\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFileContent(t, bob.path("inbox", "alice", "to-bob.txt"), []byte("hi bob\n"))

	f, err := os.OpenFile(bob.path("chat"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "plain hello")
	f.Close()
	waitContains(t, alice.path("chat"), "bob: plain hello")
	waitContains(t, bob.path("chat"), "bob: plain hello")
}

func waitPeerState(t *testing.T, n *node, other, state string) {
	t.Helper()
	err := testutil.WaitFor(30*time.Second, func() error {
		if l := n.peerLine(other); !strings.Contains(l, state) {
			return fmt.Errorf("%s's peers line for %s is %q, want %s", n.name, other, l, state)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func waitNotConnected(t *testing.T, n *node, other string) {
	t.Helper()
	err := testutil.WaitFor(30*time.Second, func() error {
		if l := n.peerLine(other); strings.Contains(l, "connected") {
			return fmt.Errorf("%s still shows %s connected: %q", n.name, other, l)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
