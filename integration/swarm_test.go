//go:build linux

package integration

import (
	"encoding/json"
	"fmt"
	"strings"
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
	net := newFanNet(t, "alice", "bob", "carol", "dave")
	c := newCluster(t)
	alice := net.startLeaf(c, "alice", nil)
	bob, carol, dave := net.startLeaf(c, "bob", alice), net.startLeaf(c, "carol", alice), net.startLeaf(c, "dave", alice)
	waitMesh(alice, bob, carol, dave)

	stopAndWait(t, dave, alice, bob, carol)
	f := putRandomFile(t, alice, "swarm.bin", swarmSize)
	waitFiles(t, fanOutWait, time.Now(), "alice's file at bob and carol",
		fileWant{"at bob", bob.path("inbox", "alice", f.rel), f},
		fileWant{"at carol", carol.path("inbox", "alice", f.rel), f})
	stopAndWait(t, alice, bob, carol)
	net.shapeUplink("bob", "100mbit")
	net.shapeUplink("carol", "100mbit")

	fromBob, fromCarol := sentTo(t, bob, "dave"), sentTo(t, carol, "dave")
	back := time.Now()
	net.rerun(c, dave, "--join", bob.addr)
	dave.waitConnected(bob, carol)
	net.rerun(c, alice, "--join", bob.addr)
	alice.waitConnected(bob, carol, dave)
	shown := waitFetchingShown(t, alice, f.rel, "dave", "fetching from bob, carol ")
	took, err := waitVerified(t, fanOutWait, back, "alice's file at dave, from bob and carol",
		fileWant{"at dave", dave.path("inbox", "alice", f.rel), f})
	if err != nil {
		t.Fatal(err)
	}
	fromBob, fromCarol = sentTo(t, bob, "dave")-fromBob, sentTo(t, carol, "dave")-fromCarol
	t.Logf("dave got %d MiB in %v: %.1f MiB from bob, %.1f MiB from carol; alice showed %q",
		swarmSize>>20, took.Round(time.Millisecond), mib(fromBob), mib(fromCarol), shown)
	for who, sent := range map[string]uint64{"bob": fromBob, "carol": fromCarol} {
		if sent < swarmSize/5 {
			t.Errorf("%s sent dave %.1f MiB of the %d MiB file; want a good part from each holder", who, mib(sent), swarmSize>>20)
		}
	}
	waitFiles(t, time.Minute, time.Now(), "alice's file in her sent/ on dave's receipt",
		fileWant{"in alice's sent/", alice.path("sent", f.rel), f})
	if sent := sentTo(t, alice, "dave"); sent > 5<<20 {
		t.Errorf("alice sent dave %.1f MiB; he had the file from bob and carol", mib(sent))
	}
	checkNoDuplicates(t, dave)
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

// waitFetchingShown polls author's status until its delivery of rel to
// member reads prefix (the member takes it from others), and returns it.
func waitFetchingShown(t *testing.T, author *node, rel, member, prefix string) string {
	t.Helper()
	var last string
	err := testutil.WaitFor(30*time.Second, func() error {
		out, err := author.c.meshfs("status", "--json", author.mnt)
		if err != nil {
			return err
		}
		var st struct {
			Transfers []struct {
				Path  string `json:"path"`
				Peer  string `json:"peer"`
				State string `json:"state"`
			} `json:"transfers"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return err
		}
		for _, tr := range st.Transfers {
			if tr.Path == rel && tr.Peer == member {
				last = tr.State
			}
		}
		if !strings.HasPrefix(last, prefix) {
			return fmt.Errorf("%s's delivery of %s to %s reads %q", author.name, rel, member, last)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return last
}
