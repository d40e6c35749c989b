//go:build linux

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// swarmSize is the file of TestSwarmTwoHolders: about 8.5 s through one
// 100 Mbit/s uplink.
const swarmSize = 100 << 20

// TestSwarmTwoHolders: bob and carol hold alice's 100 MiB file; their
// uplinks are shaped to 100 Mbit/s; alice is down when dave, who was away,
// comes back. Dave takes the file from bob and carol at once, a good part
// from each, and ends with alice's exact file. Alice, started again while
// dave is at it, shows "fetching from bob, carol" for him, sends him
// nothing herself, and moves the file to sent/ on his receipt.
func TestSwarmTwoHolders(t *testing.T) {
	r := runSwarm(t, "bob", "carol")
	for who, sent := range r.from {
		if sent < swarmSize/5 {
			t.Errorf("%s sent dave %.1f MiB of the %d MiB file; want a good part from each holder", who, mib(sent), swarmSize>>20)
		}
	}
}

// TestSwarmBench times dave's copy from one holder, then from two, each
// uplink shaped to 100 Mbit/s. It runs only with MESHFS_BENCH=1.
func TestSwarmBench(t *testing.T) {
	if os.Getenv("MESHFS_BENCH") == "" {
		t.Skip("set MESHFS_BENCH=1 (make bench) to run the benchmark")
	}
	one, two := runSwarm(t, "bob"), runSwarm(t, "bob", "carol")
	fmt.Printf("swarm: %d MiB to a member back online, holders' uplinks 100 Mbit/s: from 1 holder %s, from 2 holders %s (%.2f x)\n",
		swarmSize>>20, one.took.Round(time.Millisecond), two.took.Round(time.Millisecond), one.took.Seconds()/two.took.Seconds())
}

// swarmRun is what one runSwarm measured: how long dave took, from his
// start until the file was verified, and what each holder sent him.
type swarmRun struct {
	took time.Duration
	from map[string]uint64
}

// runSwarm makes a mesh of alice, the holders and dave, each in its own
// leaf; the holders get alice's swarmSize file while dave is down; then
// alice stops, the holders' uplinks are shaped to 100 Mbit/s, and dave
// comes back, joining the first holder. Alice starts again while dave is
// at it: she must show him fetching from the holders, send him nothing,
// and move the file to sent/ on his receipt.
func runSwarm(t *testing.T, holders ...string) swarmRun {
	t.Helper()
	net := newFanNet(t, append([]string{"alice", "dave"}, holders...)...)
	c := newCluster(t)
	alice := net.startLeaf(c, "alice", nil)
	hs := make([]*node, len(holders))
	for i, h := range holders {
		hs[i] = net.startLeaf(c, h, alice)
	}
	dave := net.startLeaf(c, "dave", alice)
	waitMesh(append([]*node{alice, dave}, hs...)...)

	stopAndWait(t, dave, append([]*node{alice}, hs...)...)
	f := putRandomFile(t, alice, "swarm.bin", swarmSize)
	var wants []fileWant
	for _, h := range hs {
		wants = append(wants, fileWant{"at " + h.name, h.path("inbox", "alice", f.rel), f})
	}
	waitFiles(t, fanOutWait, time.Now(), "alice's file at the holders", wants...)
	stopAndWait(t, alice, hs...)
	before := map[string]uint64{}
	for _, h := range hs {
		net.shapeUplink(h.name, "100mbit")
		before[h.name] = sentTo(t, h, "dave")
	}

	back := time.Now()
	net.rerun(c, dave, "--join", hs[0].addr)
	dave.waitConnected(hs...)
	from := strings.Join(holders, ", ")
	waitTransferState(t, dave, f.rel, "alice", "receiving from "+from, hs...) // before alice could offer it
	net.rerun(c, alice, "--join", hs[0].addr)
	alice.waitConnected(append([]*node{dave}, hs...)...)
	shown := waitTransferState(t, alice, f.rel, "dave", "fetching from "+from+" ", hs...)
	took, err := waitVerified(t, fanOutWait, back, "alice's file at dave, from "+strings.Join(holders, " and "),
		fileWant{"at dave", dave.path("inbox", "alice", f.rel), f})
	if err != nil {
		t.Fatal(err)
	}
	run := swarmRun{took: took, from: map[string]uint64{}}
	var parts []string
	for _, h := range hs {
		run.from[h.name] = sentTo(t, h, "dave") - before[h.name]
		parts = append(parts, fmt.Sprintf("%.1f MiB from %s", mib(run.from[h.name]), h.name))
	}
	t.Logf("dave got %d MiB in %v: %s; alice showed %q", swarmSize>>20, took.Round(time.Millisecond), strings.Join(parts, ", "), shown)
	waitFiles(t, time.Minute, time.Now(), "alice's file in her sent/ on dave's receipt",
		fileWant{"in alice's sent/", alice.path("sent", f.rel), f})
	if sent := sentTo(t, alice, "dave"); sent > 5<<20 {
		t.Errorf("alice sent dave %.1f MiB; he had the file from %s", mib(sent), strings.Join(holders, " and "))
	}
	checkNoDuplicates(t, dave)
	for _, n := range append([]*node{alice, dave}, hs...) {
		if err := n.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("stop %s: %v", n.name, err)
		}
	}
	return run
}

// rerun starts a stopped leaf node again in its namespace, with its state
// (no invite needed), a plain folder on its leaf address.
func (f *fanNet) rerun(c *cluster, n *node, flags ...string) {
	f.t.Helper()
	saved := meshfsBin
	meshfsBin = c.wrapperIn(f.leafNS(n.name))
	defer func() { meshfsBin = saved }()
	n.run(append([]string{"--no-fuse", "--port-mapping=off", "--listen", f.leafIP(n.name) + ":0"}, flags...)...)
}

// sentTo is how many bytes n's status says it sent to member name.
func sentTo(t *testing.T, n *node, name string) uint64 {
	t.Helper()
	sent, err := sentBytesTo(n, name)
	if err != nil {
		t.Fatal(err)
	}
	return sent
}

// waitTransferState polls n's status until its transfer of rel with
// member reads prefix, and returns the state. If it never does, the
// failure says what each of senders shows for rel: who refused whom, why.
func waitTransferState(t *testing.T, n *node, rel, member, prefix string, senders ...*node) string {
	t.Helper()
	var last string
	err := testutil.WaitFor(30*time.Second, func() error {
		for _, tr := range transfersOf(n, rel) {
			if tr.Peer == member {
				last = tr.State
			}
		}
		if !strings.HasPrefix(last, prefix) {
			return fmt.Errorf("%s's transfer of %s with %s reads %q", n.name, rel, member, last)
		}
		return nil
	})
	if err != nil {
		var shown []string
		for _, s := range senders {
			for _, tr := range transfersOf(s, rel) {
				shown = append(shown, fmt.Sprintf("%s: %s %s %q", s.name, tr.Direction, tr.Peer, tr.State))
			}
		}
		t.Fatalf("%v; the senders show: %s", err, strings.Join(shown, "; "))
	}
	return last
}

// transferStatus is one entry of meshfs status --json's transfers.
type transferStatus struct {
	Path      string `json:"path"`
	Peer      string `json:"peer"`
	Direction string `json:"direction"`
	State     string `json:"state"`
}

// transfersOf lists n's transfers of rel, none when its status fails.
func transfersOf(n *node, rel string) []transferStatus {
	out, err := n.c.meshfs("status", "--json", n.mnt)
	if err != nil {
		return nil
	}
	var st struct {
		Transfers []transferStatus `json:"transfers"`
	}
	if json.Unmarshal([]byte(out), &st) != nil {
		return nil
	}
	return slices.DeleteFunc(st.Transfers, func(tr transferStatus) bool { return tr.Path != rel })
}
