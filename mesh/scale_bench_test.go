package mesh

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// TestScale measures what a mesh of N in-process members costs: time to a
// full mesh, connections, heap and goroutines per member, and keepalive
// bytes. It runs with MESHFS_SCALE=N (make bench uses 40) and prints one
// line per figure; the README's scale numbers come from here.
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MESHFS_SCALE"))
	if n < 2 {
		t.Skip("set MESHFS_SCALE=N (N >= 2) to measure an N-member mesh")
	}
	quiet := func(cfg Config) Config {
		cfg.Logger = slog.New(slog.DiscardHandler)
		cfg.PingInterval = time.Second // measured per interval, scaled to the default below
		cfg.DeadAfter = 3 * time.Second
		cfg.DiscoveryInterval = DefaultConfig().DiscoveryInterval
		cfg.FullMeshUpTo = n // the full mesh's cost is what this measures
		return cfg
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	start := time.Now()
	admin := startNode(t, quiet(testConfig(t, "m00")))
	nodes := []*Node{admin}
	for i := 1; i < n; i++ {
		nodes = append(nodes, startNode(t, quiet(joinConfig(t, admin, fmt.Sprintf("m%02d", i)))))
	}
	err := testutil.WaitFor(2*time.Minute, func() error {
		for _, a := range nodes {
			if got := len(a.Peers()); got != n-1 {
				return fmt.Errorf("%s knows %d members", a.Name(), got)
			}
			for _, p := range a.Peers() {
				if p.State != Connected {
					return fmt.Errorf("%s: %s not connected", a.Name(), p.Name)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	full := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heap := (after.HeapInuse + after.StackInuse - before.HeapInuse - before.StackInuse) / uint64(n)
	goroutines := (runtime.NumGoroutine() - g0) / n

	sent := func() (s uint64) {
		for _, a := range nodes {
			for _, p := range a.Peers() {
				s += p.Sent
			}
		}
		return s
	}
	const window = 5 * time.Second
	s0 := sent()
	time.Sleep(window) // measuring a rate over wall time: the wait is the measurement
	perConnPerSec := float64(sent()-s0) / float64(n*(n-1)) / window.Seconds()
	atDefault := perConnPerSec * float64(time.Second) / float64(DefaultConfig().PingInterval)
	fmt.Printf("scale: %d members, full mesh in %.1f s, %d connections per member (%d in all)\n", n, full.Seconds(), n-1, n*(n-1)/2)
	fmt.Printf("scale: per member %.1f MiB heap+stacks (%.0f KiB per connection), %d goroutines\n",
		float64(heap)/(1<<20), float64(heap)/1024/float64(n-1), goroutines)
	fmt.Printf("scale: keepalive+discovery %.1f B/s per connection at 1 s pings = %.1f B/s at the default %v; per member %.0f B/s\n",
		perConnPerSec, atDefault, DefaultConfig().PingInterval, atDefault*float64(n-1))
}
