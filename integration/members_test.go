//go:build linux

package integration

import (
	"fmt"
	"os"
	"slices"
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

	before := fmt.Sprintf("said before carol left %d", time.Now().UnixNano())
	say(t, alice, before+"\n")
	waitContains(t, carol.path("chat"), before)
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
	waitFileContent(t, alice.path("sent", "while-away.bin"), data)
	// Her log survived the restart, and the catch-up repeated nothing.
	msgs := chatMessages(t, carol, "")
	for _, want := range []string{"alice: " + before, "bob: " + line} {
		if n := slices.Index(msgs, want); n < 0 || slices.Index(msgs[n+1:], want) >= 0 {
			t.Errorf("carol's chat shows %q not exactly once", want)
		}
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
	if err := carol.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	carol.run("--join", bob.addr, "--debug") // --debug logs each failed dial
	staysOut(t, carol, alice, bob)

	// alice and bob keep talking; carol, shut out, gets nothing of it.
	line := fmt.Sprintf("after the removal %d", time.Now().UnixNano())
	say(t, alice, line+"\n")
	waitContains(t, bob.path("chat"), "alice: "+line)
	if chat, _ := os.ReadFile(carol.path("chat")); strings.Contains(string(chat), line) {
		t.Error("removed carol received chat said after her removal")
	}
}

// staysOut polls until out's redial loop has tried and failed at least
// twice per member (so the absence was really tested), and fails at once
// if any of members, or out itself, shows out and a member connected.
func staysOut(t *testing.T, out *node, members ...*node) {
	t.Helper()
	var back error
	err := testutil.WaitFor(30*time.Second, func() error {
		for _, n := range members {
			if isConnected(n.peerLine(out.name)) || isConnected(out.peerLine(n.name)) {
				back = fmt.Errorf("%s and removed %s show each other connected again", n.name, out.name)
				return nil
			}
		}
		if tries := strings.Count(out.log.String(), "could not connect"); tries < 2*len(members) {
			return fmt.Errorf("%s has tried to dial %d times, want %d before its absence means anything",
				out.name, tries, 2*len(members))
		}
		return nil
	})
	if back != nil {
		t.Fatal(back)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// isConnected reports whether a peers line shows the member connected.
func isConnected(line string) bool { return slices.Contains(strings.Fields(line), "connected") }

// TestPlainFolderMixesWithFUSE: a --no-fuse node is a full member: files and
// chat cross in both directions, a slow writer's file is sent once and
// whole, and its peers file follows members coming and going.
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
	waitFileContent(t, bob.path("sent", "from-bob.bin"), data)

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
	if got := chatMessages(t, bob, "bob: plain hello"); len(got) != 1 {
		t.Errorf("bob's plain chat file shows his line %d times, want once", len(got))
	}
	say(t, alice, "hello plain bob\n")
	waitContains(t, bob.path("chat"), "alice: hello plain bob")

	plainSlowWriter(t, bob, alice)

	// The plain peers file follows members coming and going.
	carol := c.join("carol", alice)
	bob.waitConnected(carol)
	if err := carol.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitPeerState(t, bob, "carol", "offline")
}

// plainSlowWriter: a file written into from's plain outbox with a long pause
// between two halves is sent once, whole, after the writer closes it.
func plainSlowWriter(t *testing.T, from, to *node) {
	t.Helper()
	f, err := os.Create(from.path("outbox", "slow.bin"))
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 2<<20)
	if _, err := f.Write(data[:1<<20]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the writer pauses: that is the case under test
	if _, err := f.Write(data[1<<20:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	waitFileContent(t, to.path("inbox", from.name, "slow.bin"), data)
	waitFileContent(t, from.path("sent", "slow.bin"), data)
	ents, err := os.ReadDir(to.path("inbox", from.name))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "slow") && e.Name() != "slow.bin" {
			t.Errorf("the slow writer's file also arrived as %s", e.Name())
		}
	}
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
