//go:build linux

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// Private lines: dm/<member> is a conversation with one member. A line
// written there is sealed to that member (and its author) and spreads like
// a room line, so every member carries it, but only the two can read it.

// TestPrivateLinesFUSE: alice and bob talk under dm/ on FUSE mounts while
// carol is in the mesh; carol lists both under dm/ but reads nothing of
// their conversation, neither in dm/ nor in chat, and no file she keeps
// holds its text. A name that is no member's cannot be written to.
func TestPrivateLinesFUSE(t *testing.T) {
	testutil.RequireFUSE(t)
	c := newCluster(t)
	nodes := c.fullMesh("alice", "bob", "carol")
	alice, bob, carol := nodes[0], nodes[1], nodes[2]
	marker := chatMarkers(t, "secret", 1)[0]

	sayPrivately(t, alice, "bob", marker)
	waitConversation(t, bob, "alice", "alice: "+marker)
	sayPrivately(t, bob, "alice", "got it")
	waitConversation(t, alice, "bob", "alice: "+marker, "bob: got it")
	flushChat(t, alice, carol) // carol has had every record alice sent before
	flushChat(t, bob, carol)

	if names := dirNames(t, carol.path("dm")); !slices.Equal(names, []string{"alice", "bob"}) {
		t.Errorf("carol's dm/ lists %q, want alice and bob", names)
	}
	for _, name := range []string{"alice", "bob"} {
		if b, err := os.ReadFile(carol.path("dm", name)); err != nil || len(b) != 0 {
			t.Errorf("carol's dm/%s = %q, %v; want empty", name, b, err)
		}
	}
	if slices.ContainsFunc(chatLog(carol), func(l string) bool { return strings.Contains(l, marker) }) {
		t.Error("carol's chat shows the private line")
	}
	if p := fileHolding(t, marker, carol.state, carol.mnt); p != "" {
		t.Errorf("carol keeps the private text in the clear in %s", p)
	}
	err := os.WriteFile(alice.path("dm", "nobody"), []byte("hi\n"), 0o600)
	if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.ENOENT) {
		t.Errorf("writing dm/nobody = %v, want EPERM or ENOENT", err)
	}
}

// TestPrivateLineThroughRelay: bob is down when alice writes to him; carol
// takes the sealed line; alice goes down and bob, back, gets it from carol
// alone. The line's text is nowhere in carol's state or folder.
func TestPrivateLineThroughRelay(t *testing.T) {
	c := newCluster(t)
	alice := c.start("alice", "--no-fuse")
	bob := c.join("bob", alice, "--no-fuse")
	carol := c.join("carol", alice, "--no-fuse")
	waitMesh(alice, bob, carol)
	marker := chatMarkers(t, "secret", 1)[0]

	stopAndWait(t, bob, alice, carol)
	sayPrivately(t, alice, "bob", marker)
	flushChat(t, alice, carol) // the private line went to carol before this one
	stopAndWait(t, alice, carol)

	bob.run("--no-fuse", "--join", carol.addr)
	bob.waitConnected(carol)
	waitConversation(t, bob, "alice", "alice: "+marker)
	if p := fileHolding(t, marker, carol.state, carol.mnt); p != "" {
		t.Errorf("carol keeps the private text in the clear in %s", p)
	}
}

// sayPrivately appends line to n's dm/<to> and waits until n's own
// conversation shows it.
func sayPrivately(t *testing.T, n *node, to, line string) {
	t.Helper()
	f, err := os.OpenFile(n.path("dm", to), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	err = testutil.WaitFor(20*time.Second, func() error {
		if !slices.Contains(conversationOf(n, to), n.name+": "+line) {
			return fmt.Errorf("%s's dm/%s lacks its own line %q", n.name, to, line)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// conversationOf returns the messages of n's dm/<with> ("bob: text"), in
// order; an unreadable file is an empty conversation.
func conversationOf(n *node, with string) []string {
	data, _ := os.ReadFile(n.path("dm", with))
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if _, msg, ok := strings.Cut(line, "] "); ok && strings.HasPrefix(line, "[") {
			out = append(out, msg)
		}
	}
	return out
}

// waitConversation polls until n's dm/<with> shows want ("bob: text"), in
// that order and nothing else.
func waitConversation(t *testing.T, n *node, with string, want ...string) {
	t.Helper()
	var got []string
	err := testutil.WaitFor(60*time.Second, func() error {
		if got = conversationOf(n, with); !slices.Equal(got, want) {
			return fmt.Errorf("%s's dm/%s shows %q, want %q", n.name, with, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// fileHolding returns the first regular file under dirs whose bytes hold
// marker, or "".
func fileHolding(t *testing.T, marker string, dirs ...string) string {
	t.Helper()
	found := ""
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || found != "" || !d.Type().IsRegular() {
				return err
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(marker)) {
				found = p
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return found
}
