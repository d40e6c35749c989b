//go:build linux

package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
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

// TestPrivateFUSE: alice puts a 20 MiB file for bob in to/bob/ and they
// talk under dm/, on FUSE mounts, while carol is in the mesh. Bob gets the
// file (sha256) marked private; alice moves it to sent/to/bob/; carol lists
// both under to/ and dm/ but reads nothing of it anywhere, neither in
// to/, inbox/, dm/ nor chat, and no file she keeps holds the marker. A name
// that is no member's cannot be written to.
func TestPrivateFUSE(t *testing.T) {
	testutil.RequireFUSE(t)
	c := newCluster(t)
	nodes := c.fullMesh("alice", "bob", "carol")
	alice, bob, carol := nodes[0], nodes[1], nodes[2]
	marker := chatMarkers(t, "secret", 1)[0]

	file := putPrivateFile(t, alice, "bob", "deals/contract.bin", marker, 20<<20)
	sayPrivately(t, alice, "bob", marker)
	waitConversation(t, bob, "alice", "alice: "+marker)
	waitFiles(t, 120*time.Second, time.Now(), "the private file",
		fileWant{"at bob", bob.path("inbox", "alice", file.rel), file},
		fileWant{"in alice's sent/", alice.path("sent", "to", "bob", file.rel), file})
	if v, err := getxattr(bob.path("inbox", "alice", file.rel), "user.meshfs.private"); err != nil || v != "alice" {
		t.Errorf("bob's copy: user.meshfs.private = %q, %v; want alice", v, err)
	}
	sayPrivately(t, bob, "alice", "got it")
	waitConversation(t, alice, "bob", "alice: "+marker, "bob: got it")
	flushChat(t, alice, carol) // carol has had every record alice sent before
	flushChat(t, bob, carol)

	for _, dir := range []string{"dm", "to"} {
		if names := dirNames(t, carol.path(dir)); !slices.Equal(names, []string{"alice", "bob"}) {
			t.Errorf("carol's %s/ lists %q, want alice and bob", dir, names)
		}
	}
	for _, dir := range []string{carol.path("inbox"), carol.path("to", "alice"), carol.path("to", "bob")} {
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("carol's %s holds %q, want nothing", dir, names)
		}
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

// TestPrivateThroughCarrier: bob is down when alice puts a file for him
// and writes him a line; carol takes the sealed box and line; alice goes
// down and bob, back, gets both from carol alone, the file intact. The
// marker in both is nowhere in carol's state, her folder, or what she
// received over the wire (a test build's dump of every sync message).
func TestPrivateThroughCarrier(t *testing.T) {
	dumper := failpointBinary(t)
	c := newCluster(t)
	alice := c.start("alice", "--no-fuse")
	bob := c.join("bob", alice, "--no-fuse")
	wire := filepath.Join(t.TempDir(), "carol-wire")
	carol := c.withBinary(dumper, []string{"MESHFS_WIRE_DUMP=" + wire}, func() *node {
		return c.join("carol", alice, "--no-fuse")
	})
	waitMesh(alice, bob, carol)
	marker := chatMarkers(t, "secret", 1)[0]

	stopAndWait(t, bob, alice, carol)
	file := putPrivateFile(t, alice, "bob", "for-bob.bin", marker, 5<<20)
	sayPrivately(t, alice, "bob", marker)
	flushChat(t, alice, carol) // the private line went to carol before this one
	err := testutil.WaitFor(60*time.Second, func() error {
		if boxes, _ := filepath.Glob(carol.path("inbox", ".meshfs-partials", "carried", "*.box")); len(boxes) != 1 {
			return fmt.Errorf("carol carries %d boxes, want 1", len(boxes))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stopAndWait(t, alice, carol)

	bob.run("--no-fuse", "--join", carol.addr)
	bob.waitConnected(carol)
	waitConversation(t, bob, "alice", "alice: "+marker)
	waitFiles(t, 60*time.Second, time.Now(), "the private file, from carol alone",
		fileWant{"at bob", bob.path("inbox", "alice", file.rel), file})
	if p := fileHolding(t, marker, carol.state, carol.mnt); p != "" {
		t.Errorf("carol keeps the private text in the clear in %s", p)
	}
	if dump, err := os.ReadFile(wire); err != nil || len(dump) < int(file.size) || bytes.Contains(dump, []byte(marker)) {
		t.Errorf("carol's wire dump: %d bytes, %v; want the box (%d bytes or more) and no marker in it", len(dump), err, file.size)
	}
}

// putPrivateFile writes marker, size random bytes and marker again to n's
// to/<to>/rel and returns the file (rel is relative to to/<to>/).
func putPrivateFile(t *testing.T, n *node, to, rel, marker string, size int64) relayFile {
	t.Helper()
	p := n.path("to", to, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	w := io.MultiWriter(f, h)
	_, err = io.WriteString(w, marker)
	if err == nil {
		_, err = io.CopyN(w, rand.Reader, size)
	}
	if err == nil {
		_, err = io.WriteString(w, marker)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
	return relayFile{rel: rel, size: size + 2*int64(len(marker)), sum: [32]byte(h.Sum(nil))}
}

// getxattr reads the extended attribute name of the file at p.
func getxattr(p, name string) (string, error) {
	buf := make([]byte, 256)
	n, err := syscall.Getxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
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
