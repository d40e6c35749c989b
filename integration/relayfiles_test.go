//go:build linux

package integration

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// File relay: every file manifest is signed by its author, and a member
// that placed another member's verified file offers it to the members
// whose receipt it has not seen; receipts spread like chat lines. So a
// file reaches members its author never meets
// (TestRelayFilesPartialReachability), members that come back while its
// author is away, without the author sending it again
// (TestRelayFilesAuthorAway), and a member that damages what it passes on
// cannot change what anyone places, and is named for it
// (TestRelayFilesLyingMember).

// TestRelayFilesPartialReachability: alice in the hub of a star network,
// bob and carol in two leaves that cannot reach each other. bob's 20 MiB
// file and folder of two small files, and carol's 5 MiB file, each reach
// the other leaf through alice, byte-identical and exactly once, and each
// author moves them to sent/ once the other's receipt came back through
// alice.
func TestRelayFilesPartialReachability(t *testing.T) {
	star := newStarNet(t, "bob", "carol")
	c := newCluster(t)
	alice, bob, carol := star.trio(c)

	start := time.Now()
	bobBig := putRandomFile(t, bob, "bob-big.bin", 20<<20)
	carolBig := putRandomFile(t, carol, "carol-big.bin", 5<<20)
	bobSmall := []relayFile{
		putRandomFile(t, bob, filepath.Join("bob-folder", "one.txt"), 3000),
		putRandomFile(t, bob, filepath.Join("bob-folder", "two.dat"), 70000),
	}
	bobs := append([]relayFile{bobBig}, bobSmall...)
	t.Logf("files written in %v", time.Since(start).Round(time.Millisecond))

	var arrivals []fileWant
	for _, f := range bobs {
		arrivals = append(arrivals, fileWant{"at carol (through alice): " + f.rel, carol.path("inbox", "bob", f.rel), f})
	}
	arrivals = append(arrivals, fileWant{"at bob (through alice): " + carolBig.rel, bob.path("inbox", "carol", carolBig.rel), carolBig})
	waitFiles(t, 90*time.Second, start, "files relayed between the leaves by alice", arrivals...)

	// Alice has them too, directly from their authors.
	var direct []fileWant
	for _, f := range bobs {
		direct = append(direct, fileWant{"at alice: bob's " + f.rel, alice.path("inbox", "bob", f.rel), f})
	}
	direct = append(direct, fileWant{"at alice: carol's " + carolBig.rel, alice.path("inbox", "carol", carolBig.rel), carolBig})
	waitFiles(t, 30*time.Second, start, "files at alice, directly from their authors", direct...)

	// The author moves a file to sent/ only when every member's receipt
	// reached it: carol's and bob's can only have come through alice.
	var sent []fileWant
	for _, f := range bobs {
		sent = append(sent, fileWant{"in bob's sent/: " + f.rel, bob.path("sent", f.rel), f})
	}
	sent = append(sent, fileWant{"in carol's sent/: " + carolBig.rel, carol.path("sent", carolBig.rel), carolBig})
	waitFiles(t, 60*time.Second, start, "authors' files moved to sent/ (receipts relayed back by alice)", sent...)
	for _, f := range bobs {
		waitGoneWithin(t, 30*time.Second, bob.path("outbox", f.rel))
	}
	waitGoneWithin(t, 30*time.Second, carol.path("outbox", carolBig.rel))

	if l := bob.peerLine("carol"); isConnected(l) {
		t.Errorf("bob shows carol connected, though the hub drops every packet between them: %q", l)
	}
	for _, n := range []*node{alice, bob, carol} {
		checkNoDuplicates(t, n)
	}
}

// TestRelayFilesAuthorAway: carol is down while alice shares a 200 MiB
// file that bob gets; then alice goes down and carol comes back, reaching
// only bob, and gets the file from him. alice, back too, moves the file to
// sent/ on carol's receipt, without sending it to carol again.
func TestRelayFilesAuthorAway(t *testing.T) {
	c := newCluster(t)
	alice := c.start("alice", "--no-fuse")
	bob := c.join("bob", alice, "--no-fuse")
	carol := c.join("carol", alice, "--no-fuse")
	waitMesh(alice, bob, carol)

	stopAndWait(t, carol, alice, bob)
	start := time.Now()
	big := putRandomFile(t, alice, "away-big.bin", 200<<20)
	t.Logf("alice wrote %s (%d MiB) in %v", big.rel, big.size>>20, time.Since(start).Round(time.Millisecond))
	waitFiles(t, 2*time.Minute, start, "alice's file at bob, directly",
		fileWant{"at bob", bob.path("inbox", "alice", big.rel), big})
	if _, err := os.Stat(alice.path("outbox", big.rel)); err != nil {
		t.Fatalf("alice's file left outbox/ while carol was away: %v", err)
	}
	stopAndWait(t, alice, bob)

	back := time.Now()
	carol.run("--no-fuse", "--join", bob.addr) // state is kept: no invite needed
	carol.waitConnected(bob)
	waitFiles(t, 2*time.Minute, back, "alice's file at carol, who can have it only from bob since alice is down",
		fileWant{"at carol (from bob)", carol.path("inbox", "alice", big.rel), big})
	t.Logf("carol got the %d MiB file from bob %v after she started again", big.size>>20,
		time.Since(back).Round(time.Millisecond))
	if l := carol.peerLine("alice"); isConnected(l) {
		t.Fatalf("carol shows alice connected while alice is down: %q", l)
	}

	returned := time.Now()
	alice.run("--no-fuse", "--join", bob.addr)
	alice.waitConnected(bob, carol)
	waitFiles(t, 60*time.Second, returned, "alice's file in her sent/ on carol's receipt",
		fileWant{"in alice's sent/", alice.path("sent", big.rel), big})
	waitGoneWithin(t, 10*time.Second, alice.path("outbox", big.rel))
	t.Logf("alice moved the file to sent/ %v after she started again", time.Since(returned).Round(time.Millisecond))

	// A full resend would be 200 MiB; receipts, catch-up and keepalives
	// are a few KiB. Watch for a while: an offer still under way would
	// show.
	const limit = 5 << 20
	var last uint64
	watch := time.Now()
	err := testutil.WaitFor(15*time.Second, func() error {
		sent, err := sentBytesTo(alice, "carol")
		if err != nil {
			return err
		}
		last = sent
		if sent >= limit {
			return nil // fails below
		}
		if time.Since(watch) < 5*time.Second {
			return fmt.Errorf("watching alice's bytes sent to carol (%d so far)", sent)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if last >= limit {
		t.Fatalf("alice sent carol %d bytes since she started again, want < %d: she sent the file again though carol had it from bob",
			last, limit)
	}
	t.Logf("alice sent carol %d bytes since she started again", last)
	for _, n := range []*node{alice, bob, carol} {
		checkNoDuplicates(t, n)
	}
}

// TestRelayFilesLyingMember: mallory runs a build whose failpoint damages
// every block of a file she passes on for another author. carol, down
// while alice shares a 30 MiB file, comes back while alice is down and is
// offered the file by mallory and by bob. She drops mallory's damaged
// blocks, says so naming her, counts them against her in the peers file,
// and ends with alice's exact file, once.
func TestRelayFilesLyingMember(t *testing.T) {
	liar := failpointBinary(t)
	c := newCluster(t)
	alice := c.start("alice", "--no-fuse")
	bob := c.join("bob", alice, "--no-fuse")
	carol := c.join("carol", alice, "--no-fuse")
	mallory := c.withBinary(liar, []string{"MESHFS_FAILPOINT=lie"}, func() *node {
		return c.join("mallory", alice, "--no-fuse")
	})
	waitMesh(alice, bob, carol, mallory)

	stopAndWait(t, carol, alice, bob, mallory)
	start := time.Now()
	f := putRandomFile(t, alice, "lied-about.bin", 30<<20)
	waitFiles(t, 60*time.Second, start, "alice's file at bob and mallory, directly",
		fileWant{"at bob", bob.path("inbox", "alice", f.rel), f},
		fileWant{"at mallory", mallory.path("inbox", "alice", f.rel), f})
	stopAndWait(t, alice, bob, mallory)

	// Two offers of one file: carol takes one and refuses the other as busy
	// until it ends. bob is frozen while carol comes back through mallory,
	// so mallory's offer is the one she takes first; bob, thawed, offers
	// it too.
	if err := bob.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("freeze bob: %v", err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			bob.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw)
	back := time.Now()
	carol.run("--no-fuse", "--join", mallory.addr)
	carol.waitConnected(mallory)
	err := testutil.WaitFor(30*time.Second, func() error {
		if damagedFrom(carol, "mallory") == "" {
			return fmt.Errorf("carol's log has no line with both %q and %q", "damaged block dropped", "mallory")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("mallory's damaged blocks went unreported at carol: %v", err)
	}
	t.Logf("carol dropped a damaged block from mallory %v after she started again: %s",
		time.Since(back).Round(time.Millisecond), damagedFrom(carol, "mallory"))
	thaw()
	carol.waitConnected(bob)

	waitFiles(t, 90*time.Second, back, "alice's exact file at carol, offered by bob and by the lying mallory",
		fileWant{"at carol", carol.path("inbox", "alice", f.rel), f})
	t.Logf("carol got the exact file %v after she started again", time.Since(back).Round(time.Millisecond))
	checkNoDuplicates(t, carol)

	err = testutil.WaitFor(10*time.Second, func() error {
		if l := carol.peerLine("mallory"); !strings.Contains(l, "bad data from it") {
			return fmt.Errorf("carol's peers line for mallory: %q", l)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("carol's peers file does not count mallory's bad data: %v", err)
	}
	if l := carol.peerLine("bob"); strings.Contains(l, "bad data from it") {
		t.Errorf("carol counts bad data against the honest bob: %q", l)
	}
	t.Logf("carol's peers line for mallory: %q", carol.peerLine("mallory"))
}

// relayFile is a file an author put in its outbox: its path under outbox/,
// size and sha256.
type relayFile struct {
	rel  string
	size int64
	sum  [32]byte
}

// putRandomFile writes size random bytes to n's outbox/rel, streamed (never
// held whole), hashing them on the way, and returns the file.
func putRandomFile(t *testing.T, n *node, rel string, size int64) relayFile {
	t.Helper()
	p := n.path("outbox", rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		f.Close()
		t.Fatalf("write %s: %v", p, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", p, err)
	}
	return relayFile{rel: rel, size: size, sum: [32]byte(h.Sum(nil))}
}

// fileWant is a file that must appear at path with want's content; label
// names it in timings and failures.
type fileWant struct {
	label string
	path  string
	want  relayFile
}

// waitFiles is waitVerified that fails t when a file is still missing
// after within.
func waitFiles(t *testing.T, within time.Duration, since time.Time, what string, wants ...fileWant) {
	t.Helper()
	if _, err := waitVerified(t, within, since, what, wants...); err != nil {
		t.Fatal(err)
	}
}

// sameFile reports why p is not want's file: missing, another size (it is
// compared first, so a large file is hashed only once it is whole), or
// another sha256.
func sameFile(p string, want relayFile) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != want.size {
		return fmt.Errorf("%d of %d bytes", fi.Size(), want.size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := [32]byte(h.Sum(nil)); got != want.sum {
		return fmt.Errorf("sha256 %x, want %x", got[:8], want.sum[:8])
	}
	return nil
}

// waitGoneWithin polls until path no longer exists.
func waitGoneWithin(t *testing.T, within time.Duration, path string) {
	t.Helper()
	err := testutil.WaitFor(within, func() error {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s still exists", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// numbered matches a name placed beside an existing one: "name (1).ext".
var numbered = regexp.MustCompile(` \(\d+\)(\.[^.]*)?$`)

// checkNoDuplicates fails t if any file under n's inbox has a numbered
// name: a file placed twice.
func checkNoDuplicates(t *testing.T, n *node) {
	t.Helper()
	var dups []string
	root := n.path("inbox")
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && numbered.MatchString(e.Name()) {
			rel, _ := filepath.Rel(root, p)
			dups = append(dups, rel)
		}
		return nil
	})
	sort.Strings(dups)
	if len(dups) > 0 {
		t.Errorf("%s's inbox has numbered copies, a file placed more than once: %q", n.name, dups)
	}
}

// sentBytesTo is the sent_bytes of meshfs status --json at n for member
// name: what n's process sent it since it started.
func sentBytesTo(n *node, name string) (uint64, error) {
	out, err := n.c.meshfs("status", "--json", n.mnt)
	if err != nil {
		return 0, err
	}
	var st struct {
		Peers []struct {
			Name string `json:"name"`
			Sent uint64 `json:"sent_bytes"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return 0, fmt.Errorf("%s's status --json: %v", n.name, err)
	}
	for _, p := range st.Peers {
		if p.Name == name {
			return p.Sent, nil
		}
	}
	return 0, errors.New(n.name + "'s status lists no member " + name)
}

// damagedFrom returns the first line of n's log that reports a damaged
// block dropped and names member, or "".
func damagedFrom(n *node, member string) string {
	for _, l := range strings.Split(n.log.String(), "\n") {
		if strings.Contains(l, "damaged block dropped") && strings.Contains(l, member) {
			return l
		}
	}
	return ""
}
