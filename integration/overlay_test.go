//go:build linux

package integration

import (
	"fmt"
	"testing"
	"time"
)

// TestPartialMeshDelivers: twelve plain-folder members with the full-mesh
// threshold lowered to 4 and active views of 2, so each keeps at most 6
// connections instead of 11. A file and a chat line from alice still reach
// every member, each passing on what it holds, and alice's file moves to
// sent/ once every member's receipt came back through the others.
func TestPartialMeshDelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("twelve members")
	}
	const members, view = 12, 2
	flags := []string{"--no-fuse", "--full-mesh-up-to", "4", "--active-view", fmt.Sprint(view)}
	c := newCluster(t)
	alice := c.start("alice", flags...)
	nodes := []*node{alice}
	for i := 1; i < members; i++ {
		nodes = append(nodes, c.join(fmt.Sprintf("m%02d", i), alice, flags...))
	}
	for _, n := range nodes {
		waitStatus(t, n, func(st nodeStatus) error { return partialView(st, members-1, 2*view) })
	}
	start := time.Now()
	f := putRandomFile(t, alice, "overlay.bin", 5<<20)
	var wants []fileWant
	for _, n := range nodes[1:] {
		wants = append(wants, fileWant{"at " + n.name, n.path("inbox", "alice", f.rel), f})
	}
	waitFiles(t, 2*time.Minute, start, "5 MiB from alice to 11 members", wants...)
	line := chatMarkers(t, "alice", 1)
	said := time.Now()
	sayLine(t, alice, line[0])
	var chats []chatWant
	for _, n := range nodes[1:] {
		chats = append(chats, chatWant{n, authored("alice", line)})
	}
	waitChat(t, time.Minute, "alice's line at 11 members", chats...)
	t.Logf("chat line at all 11 members %v after it was said", time.Since(said).Round(time.Millisecond))
	waitFiles(t, time.Minute, start, "alice's file in her sent/ (every receipt came back)",
		fileWant{"in alice's sent/", alice.path("sent", f.rel), f})
	total := 0
	for _, n := range nodes {
		st, err := n.status()
		if err != nil {
			t.Fatal(err)
		}
		total += connectedCount(st)
	}
	t.Logf("%d members, %.1f connections each", members, float64(total)/members)
}

// partialView reports an error unless st lists want members, each with a
// path (connected, or reached through a member), and at most max of them
// connected.
func partialView(st nodeStatus, want, max int) error {
	if len(st.Peers) != want {
		return fmt.Errorf("%d members listed, want %d", len(st.Peers), want)
	}
	if c := connectedCount(st); c < 1 || c > max {
		return fmt.Errorf("%d connections, want 1 to %d", c, max)
	}
	return nil
}

func connectedCount(st nodeStatus) int {
	c := 0
	for _, p := range st.Peers {
		if p.State == "connected" {
			c++
		}
	}
	return c
}
