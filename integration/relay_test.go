//go:build linux

package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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

// Chat relay: every chat line is a record its author signs, and every
// member forwards the records it gets to the members it is connected to,
// and sends them on catch-up whoever wrote them. So a line reaches members
// its author never meets (TestRelayPartialReachability), members that come
// back while its author is down (TestRelayAuthorAway), and a member that
// alters what it forwards cannot change what anyone shows
// (TestRelayLyingMember).

// TestRelayPartialReachability: alice in the hub of a star network, bob
// and carol in two leaves that cannot reach each other. Their lines,
// written interleaved, reach each other through alice, each exactly once
// and in the order its author wrote them.
func TestRelayPartialReachability(t *testing.T) {
	star := newStarNet(t, "bob", "carol")
	c := newCluster(t)
	alice, bob, carol := star.trio(c)

	bobs, carols := chatMarkers(t, "bob", 3), chatMarkers(t, "carol", 3)
	start := time.Now()
	for i := range 3 {
		sayLine(t, bob, bobs[i])
		sayLine(t, carol, carols[i])
	}
	written := time.Now()
	waitChat(t, 60*time.Second, "lines relayed between the leaves by alice",
		chatWant{carol, authored("bob", bobs)}, chatWant{bob, authored("carol", carols)})
	t.Logf("relay through alice took %v after the last line (%v after the first)",
		time.Since(written).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	flushChat(t, alice, bob, carol)
	for _, n := range []*node{alice, bob, carol} {
		checkChatOnce(t, n, authored("bob", bobs))
		checkChatOnce(t, n, authored("carol", carols))
	}
}

// TestRelayAuthorAway: carol is down while alice writes three lines that
// bob gets; then alice goes down and carol comes back, reaching only bob.
// She gets alice's lines from bob, under alice's name, each once and in
// order; and alice, back too, still shows each of her lines once.
func TestRelayAuthorAway(t *testing.T) {
	c := newCluster(t)
	alice := c.start("alice", "--no-fuse")
	bob := c.join("bob", alice, "--no-fuse")
	carol := c.join("carol", alice, "--no-fuse")
	waitMesh(alice, bob, carol)

	stopAndWait(t, carol, alice, bob)
	lines := chatMarkers(t, "alice", 3)
	for _, l := range lines {
		sayLine(t, alice, l)
	}
	waitChat(t, 30*time.Second, "alice's lines at bob, directly", chatWant{bob, authored("alice", lines)})
	stopAndWait(t, alice, bob)

	carol.run("--no-fuse", "--join", bob.addr) // state is kept: no invite needed
	carol.waitConnected(bob)
	waitChat(t, 60*time.Second, "alice's lines at carol, who can have them only from bob since alice is down",
		chatWant{carol, authored("alice", lines)})
	checkChatOnce(t, carol, authored("alice", lines))
	checkAuthor(t, carol, "alice", lines)

	alice.run("--no-fuse", "--join", bob.addr)
	alice.waitConnected(bob, carol)
	flushChat(t, bob, alice)
	flushChat(t, carol, alice)
	for _, n := range []*node{alice, bob, carol} {
		checkChatOnce(t, n, authored("alice", lines))
	}
}

// TestRelayLyingMember: mallory runs a build whose failpoint alters the
// text of every record she forwards for another author (keeping its
// signature). carol, down while bob writes, catches up from alice and
// mallory only (bob is down by then too), and then gets three live lines
// from bob, directly and forwarded by both. Nobody shows an altered line,
// every one of bob's lines shows once and in order, and a member that got
// an altered record says which member sent it.
func TestRelayLyingMember(t *testing.T) {
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
	first := chatMarkers(t, "bob", 3)
	for _, l := range first {
		sayLine(t, bob, l)
	}
	waitChat(t, 30*time.Second, "bob's first lines at alice and mallory, directly",
		chatWant{alice, authored("bob", first)}, chatWant{mallory, authored("bob", first)})
	// With bob down, carol's catch-up can only be the copies alice and
	// mallory forward.
	stopAndWait(t, bob, alice, mallory)
	carol.run("--no-fuse", "--join", alice.addr)
	carol.waitConnected(alice, mallory)
	waitChat(t, 60*time.Second, "bob's first lines at carol, caught up from alice and mallory while bob is down",
		chatWant{carol, authored("bob", first)})

	bob.run("--no-fuse", "--join", alice.addr)
	waitMesh(alice, bob, carol, mallory)
	live := chatMarkers(t, "bob", 3)
	for _, l := range live {
		sayLine(t, bob, l)
	}
	all := authored("bob", append(first, live...))
	waitChat(t, 30*time.Second, "bob's live lines everywhere",
		chatWant{alice, all}, chatWant{carol, all}, chatWant{mallory, all})
	flushChat(t, mallory, alice, bob, carol) // what mallory forwarded has arrived

	for _, n := range []*node{alice, bob, carol} {
		checkChatOnce(t, n, all)
	}
	for _, n := range []*node{alice, bob, carol, mallory} {
		if data, _ := os.ReadFile(n.path("chat")); strings.Contains(string(data), "(altered)") {
			t.Errorf("%s's chat shows a line mallory altered:\n%s", n.name, data)
		}
	}
	err := testutil.WaitFor(10*time.Second, func() error {
		for _, n := range []*node{alice, carol} {
			for _, l := range strings.Split(n.log.String(), "\n") {
				if strings.Contains(l, "does not verify") && strings.Contains(l, "mallory") {
					return nil
				}
			}
		}
		return fmt.Errorf("neither alice's nor carol's log has a line with both %q and %q", "does not verify", "mallory")
	})
	if err != nil {
		t.Fatalf("mallory's altered records went unreported: %v", err)
	}
}

// chatMarkers returns n unique lines for author: "bob-1-<hex>" ...
func chatMarkers(t *testing.T, author string, n int) []string {
	t.Helper()
	b := make([]byte, 4)
	var out []string
	for i := 1; i <= n; i++ {
		rand.Read(b)
		out = append(out, fmt.Sprintf("%s-%d-%s", author, i, hex.EncodeToString(b)))
	}
	return out
}

// authored turns lines into the messages the chat log shows for author:
// "bob: bob-1-<hex>".
func authored(author string, lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = author + ": " + l
	}
	return out
}

// sayLine appends line to n's chat, as echo line >> chat does, and waits
// until n's own log shows it, so lines said one after another are in
// that order.
func sayLine(t *testing.T, n *node, line string) {
	t.Helper()
	f, err := os.OpenFile(n.path("chat"), os.O_APPEND|os.O_WRONLY, 0)
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
	waitChat(t, 20*time.Second, "a line in its author's own log", chatWant{n, authored(n.name, []string{line})})
}

// chatWant is what one node's chat must show: messages as chatMessages
// returns them ("bob: text").
type chatWant struct {
	n    *node
	msgs []string
}

// waitChat polls until every node of wants shows all of its messages, and
// fails t after within, naming the step (what) and what is still missing.
func waitChat(t *testing.T, within time.Duration, what string, wants ...chatWant) {
	t.Helper()
	err := testutil.WaitFor(within, func() error {
		for _, w := range wants {
			have := map[string]bool{}
			for _, m := range chatLog(w.n) {
				have[m] = true
			}
			var missing []string
			for _, m := range w.msgs {
				if !have[m] {
					missing = append(missing, m)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%s's chat lacks %d of %d lines: %q", w.n.name, len(missing), len(w.msgs), missing)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// chatLog returns the messages of n's chat log ("bob: text"), without
// their time stamps, in log order; an unreadable file is an empty log.
func chatLog(n *node) []string {
	data, _ := os.ReadFile(n.path("chat"))
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if _, msg, ok := strings.Cut(line, "] "); ok && strings.HasPrefix(line, "[") {
			out = append(out, msg)
		}
	}
	return out
}

// checkChatOnce fails t unless n's chat shows each of want exactly once,
// in the order of want.
func checkChatOnce(t *testing.T, n *node, want []string) {
	t.Helper()
	count, at := map[string]int{}, map[string]int{}
	for i, m := range chatLog(n) {
		count[m]++
		at[m] = i
	}
	for i, m := range want {
		if count[m] != 1 {
			t.Errorf("%s's chat shows %q %d times, want once", n.name, m, count[m])
			continue
		}
		if i > 0 && count[want[i-1]] == 1 && at[want[i-1]] > at[m] {
			t.Errorf("%s's chat shows %q before %q, want the order they were written", n.name, m, want[i-1])
		}
	}
}

// checkAuthor fails t unless each of lines is a log line of n's chat in the
// form "[YYYY-MM-DD HH:MM:SS] author: line".
func checkAuthor(t *testing.T, n *node, author string, lines []string) {
	t.Helper()
	data, _ := os.ReadFile(n.path("chat"))
	for _, l := range lines {
		re := regexp.MustCompile(`(?m)^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\] ` + regexp.QuoteMeta(author+": "+l) + `$`)
		if !re.Match(data) {
			t.Errorf("%s's chat has no line \"[YYYY-MM-DD HH:MM:SS] %s: %s\":\n%s", n.name, author, l, data)
		}
	}
}

// flushChat has from say a fresh line and waits until each of to shows it.
// A member sends on each connection in order, so whatever from forwarded
// before has then arrived too.
func flushChat(t *testing.T, from *node, to ...*node) {
	t.Helper()
	line := chatMarkers(t, from.name+"-flush", 1)
	sayLine(t, from, line[0])
	var wants []chatWant
	for _, n := range to {
		wants = append(wants, chatWant{n, authored(from.name, line)})
	}
	waitChat(t, 30*time.Second, from.name+"'s flush line, said after everything checked", wants...)
}

// waitMesh waits until every node shows every other connected.
func waitMesh(nodes ...*node) {
	for _, n := range nodes {
		for _, o := range nodes {
			if o != n {
				n.waitConnected(o)
			}
		}
	}
}

// stopAndWait stops n (SIGTERM) and waits until each of others shows it
// offline.
func stopAndWait(t *testing.T, n *node, others ...*node) {
	t.Helper()
	if err := n.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("stop %s: %v", n.name, err)
	}
	for _, o := range others {
		waitPeerState(t, o, n.name, "offline")
	}
}

// withBinary starts a node (start calls cluster.start or join) from the
// binary bin with extra environment variables; a restart with node.run
// uses meshfsBin and the cluster's environment again.
func (c *cluster) withBinary(bin string, extra []string, start func() *node) *node {
	saved := meshfsBin
	meshfsBin = bin // run() execs meshfsBin; restored before any other start
	defer func() { meshfsBin = saved }()
	return c.withEnv(extra, start)
}

var failpoints struct {
	once sync.Once
	bin  string
	err  error
}

// failpointBinary builds meshfs with the failpoints build tag, once per
// test process, next to the binary TestMain built (and removes).
func failpointBinary(t *testing.T) string {
	t.Helper()
	failpoints.once.Do(func() {
		bin := filepath.Join(filepath.Dir(meshfsBin), "meshfs-failpoints")
		args := []string{"build", "-tags", "failpoints", "-o", bin}
		if raceEnabled {
			args = append(args, "-race")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", append(args, "../cmd/meshfs")...).CombinedOutput()
		if err != nil {
			failpoints.err = fmt.Errorf("build meshfs with -tags failpoints: %v: %s", err, out)
			return
		}
		failpoints.bin = bin
	})
	if failpoints.err != nil {
		t.Fatal(failpoints.err)
	}
	return failpoints.bin
}
