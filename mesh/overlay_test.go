package mesh

import (
	"errors"
	"fmt"
	"io"
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
			if c := liveCount(n); c < 1 || c > 2*view {
				return fmt.Errorf("%s has %d connections, want 1..%d", n.Name(), c, 2*view)
			}
		}
		return connectedGraph(nodes)
	})
	if err != nil {
		t.Fatal(err)
	}
	total, closed := 0, 0
	for _, n := range nodes {
		total += liveCount(n)
		// Nobody left: every connection that closed was the overlay's
		// doing, or replaced, and must not read as a member leaving.
		for _, e := range n.cfg.Handler.(*recorder).snapshot() {
			if d, ok := e.(PeerDisconnected); ok {
				closed++
				if d.Left() {
					t.Errorf("%s: %s reads as having left (err %v)", n.Name(), d.Peer.Name, d.Err)
				}
			}
		}
	}
	if closed == 0 {
		t.Errorf("no connection closed while %d members formed views of %d: the overlay was not exercised", members, view)
	}
	t.Logf("%d members, %.1f connections per member, %d connections closed", members, float64(total)/members, closed)
}

func TestDisconnectedLeft(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		left bool
	}{
		{"connection lost", io.EOF, true},
		{"unknown", nil, true},
		{"they shut down", &ByeError{Reason: reasonShutdown.String(), code: reasonShutdown}, true},
		{"they trimmed it", &ByeError{Reason: reasonTooManyPeers.String(), code: reasonTooManyPeers}, false},
		{"they replaced it", &ByeError{Reason: reasonReplaced.String(), code: reasonReplaced}, false},
		{"they kept another", &ByeError{Reason: reasonDuplicate.String(), code: reasonDuplicate}, false},
		{"we replaced it", errReplaced, false},
		{"we trimmed it", fmt.Errorf("%w: %w", errByeSent, errTrimmed), false},
		{"we refused it", fmt.Errorf("%w: %s", errByeSent, reasonProtocol), true},
	} {
		if got := (PeerDisconnected{Err: tc.err}).Left(); got != tc.left {
			t.Errorf("%s: Left() = %v, want %v", tc.name, got, tc.left)
		}
	}
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
