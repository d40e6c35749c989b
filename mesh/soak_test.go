package mesh

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// TestSoakFullMesh starts MESHFS_SOAK_NODES (default 50) nodes in this
// process on 127.0.0.1, all joining through the admin, and reports the
// time to a full mesh and the heap per connection. It runs only with
// MESHFS_SOAK=1 (make soak) or when named with -run.
func TestSoakFullMesh(t *testing.T) {
	if os.Getenv("MESHFS_SOAK") == "" && !runNamed("TestSoakFullMesh") {
		t.Skip("set MESHFS_SOAK=1 or run make soak")
	}
	count := 50
	if s := os.Getenv("MESHFS_SOAK_NODES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			t.Fatalf("MESHFS_SOAK_NODES=%q", s)
		}
		count = n
	}
	heapBefore := heapInUse()
	start := time.Now()
	cfg := soakConfig(t, "n00")
	cfg.FullMeshUpTo = count // a full mesh is what the soak holds up
	admin := startNode(t, cfg)
	nodes := []*Node{admin}
	for i := 1; i < count; i++ {
		jc := joinConfig(t, admin, fmt.Sprintf("n%02d", i))
		jc.Logger = cfg.Logger
		jc.RedialMax, jc.DiscoveryInterval = cfg.RedialMax, cfg.DiscoveryInterval
		jc.FullMeshUpTo = count
		nodes = append(nodes, startNode(t, jc))
	}
	joined := time.Since(start)
	if err := testutil.WaitFor(5*time.Minute, func() error {
		missing := 0
		for _, n := range nodes {
			n.mu.Lock()
			missing += count - 1 - len(n.peers)
			n.mu.Unlock()
		}
		if missing > 0 {
			return fmt.Errorf("%d connections missing", missing)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	full := time.Since(start)
	conns := count * (count - 1) // each node's end of every pair
	heap := heapInUse() - heapBefore
	t.Logf("soak: %d nodes, %d connections (both ends)", count, conns)
	t.Logf("soak: all joined after %v, full mesh after %v", joined.Round(time.Millisecond), full.Round(time.Millisecond))
	t.Logf("soak: heap %.1f MiB total, %.1f KiB per peer connection, %.1f KiB per node; goroutines %d",
		float64(heap)/(1<<20), float64(heap)/float64(conns)/1024, float64(heap)/float64(count)/1024, runtime.NumGoroutine())
	for _, n := range nodes {
		if got := len(n.Peers()); got != count-1 {
			t.Errorf("%s lists %d peers, want %d", n.Name(), got, count-1)
		}
	}
}

func soakConfig(t *testing.T, name string) Config {
	cfg := testConfig(t, name)
	cfg.Logger = nil // 50 nodes of debug logs would drown the report
	cfg.HandshakeTimeout = 10 * time.Second
	cfg.RedialMax = 2 * time.Second
	cfg.DiscoveryInterval = 2 * time.Second
	return cfg
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// runNamed reports whether -run names test exactly.
func runNamed(test string) bool {
	for i, a := range os.Args {
		if a == "-test.run="+test || a == "-test.run=^"+test+"$" || a == "-test.run" && i+1 < len(os.Args) && os.Args[i+1] == test {
			return true
		}
	}
	return false
}
