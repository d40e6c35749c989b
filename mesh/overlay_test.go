package mesh

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// TestPartialMesh: 30 members over a threshold of 10 keep bounded random
// views (3 dialed, at most 9 in all) instead of 29 connections each, yet
// every member knows every other and the connections join them all into
// one graph.
func TestPartialMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("30 nodes: not in -short")
	}
	const members, view = 30, 3
	small := func(cfg Config) Config {
		cfg.FullMeshUpTo, cfg.ActiveView = 10, view
		return cfg
	}
	admin := startNode(t, small(testConfig(t, "m00")))
	nodes := []*Node{admin}
	for i := 1; i < members; i++ {
		nodes = append(nodes, startNode(t, small(joinConfig(t, admin, fmt.Sprintf("m%02d", i)))))
	}
	within := 60 * time.Second
	if raceEnabled {
		within *= 3
	}
	err := testutil.WaitFor(within, func() error {
		for _, n := range nodes {
			if k := len(n.Peers()); k != members-1 {
				return fmt.Errorf("%s knows %d members, want %d", n.Name(), k, members-1)
			}
			if c := liveCount(n); c < 1 || c > 3*view {
				return fmt.Errorf("%s has %d connections, want 1..%d", n.Name(), c, 3*view)
			}
		}
		return connectedGraph(nodes)
	})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range nodes {
		total += liveCount(n)
	}
	t.Logf("%d members, %.1f connections per member", members, float64(total)/members)
}

func liveCount(n *Node) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.peers)
}

// connectedGraph reports an error unless the live connections join every
// node to every other, directly or through others.
func connectedGraph(nodes []*Node) error {
	byID := map[PeerID]*Node{}
	for _, n := range nodes {
		byID[n.ID()] = n
	}
	seen := map[PeerID]bool{nodes[0].ID(): true}
	queue := []*Node{nodes[0]}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, p := range n.Peers() {
			if p.State == Connected && !seen[p.ID] && byID[p.ID] != nil {
				seen[p.ID] = true
				queue = append(queue, byID[p.ID])
			}
		}
	}
	if len(seen) != len(nodes) {
		return errors.New(fmt.Sprint("connections reach ", len(seen), " of ", len(nodes), " members"))
	}
	return nil
}
