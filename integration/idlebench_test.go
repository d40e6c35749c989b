//go:build linux

package integration

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat (USER_HZ,
// fixed at 100 for user space on Linux).
const userHZ = 100

// TestIdleBench is `make bench`'s scale and idle case: MESHFS_IDLE_MEMBERS
// (default 100) plain-folder members on 127.0.0.1 join one admin with one
// multi-use invite; once each lists every other and their connections
// join them all (a partial mesh above 24 members), nothing is sent, and
// from MESHFS_IDLE_SETTLE seconds (default 30) on, the CPU time each
// process uses over MESHFS_IDLE_SECONDS (default 60) is read from /proc.
// Then the admin sends a 10 MiB file and a chat line. It prints the time
// until the mesh formed, connections, RSS, the average share of one core
// per member (median and spread), and how long the file and the line took
// to reach each member (median and slowest). It runs only with
// MESHFS_BENCH=1.
func TestIdleBench(t *testing.T) {
	if os.Getenv("MESHFS_BENCH") == "" {
		t.Skip("set MESHFS_BENCH=1 (make bench) to run the benchmark")
	}
	members := envInt(t, "MESHFS_IDLE_MEMBERS", 100)
	checkInotifyInstances(t, members)
	window := time.Duration(envInt(t, "MESHFS_IDLE_SECONDS", 60)) * time.Second
	c := newCluster(t)
	began := time.Now()
	nodes := c.idleMesh(members)
	meshed := time.Since(began)
	// The joins' aftermath (member lists pushed, rosters saved, chat
	// catch-ups) is not idle: measure from MESHFS_IDLE_SETTLE seconds on.
	settle := time.NewTimer(time.Duration(envInt(t, "MESHFS_IDLE_SETTLE", 30)) * time.Second)
	<-settle.C

	before := cpuTicks(t, nodes)
	start := time.Now()
	// The start is printed for perf or strace alongside.
	fmt.Printf("idle: measuring %s from %s\n", window, start.UTC().Format(time.TimeOnly))
	idle := time.NewTimer(window) // the measurement itself: nothing to poll for
	<-idle.C
	after := cpuTicks(t, nodes)
	elapsed := time.Since(start).Seconds()

	shares := make([]float64, len(nodes))
	for i := range nodes {
		shares[i] = float64(after[i]-before[i]) / userHZ / elapsed * 100
	}
	printIdle(members, meshed, window, shares, nodes)
	files, lines := deliveryTimes(t, nodes[0], nodes[1:])
	fmt.Printf("idle: 10 MiB file from %s verified at each member: median %s, slowest %s\n",
		nodes[0].name, median(files), slices.Max(files))
	fmt.Printf("idle: chat line from %s at each member: median %s, slowest %s\n",
		nodes[0].name, median(lines), slices.Max(lines))
}

// deliveryTimes has from put a 10 MiB file in its outbox, then say a line,
// and returns how long each of the others took to hold the verified file,
// and to show the line in its chat.
func deliveryTimes(t *testing.T, from *node, others []*node) (files, lines []time.Duration) {
	t.Helper()
	start := time.Now()
	f := putRandomFile(t, from, "scale.bin", 10<<20)
	files = pollEach(t, others, start, func(n *node) bool {
		return sameFile(n.path("inbox", from.name, f.rel), f) == nil
	})
	line := chatMarkers(t, from.name, 1)[0]
	start = time.Now()
	sayLine(t, from, line)
	lines = pollEach(t, others, start, func(n *node) bool {
		return slices.ContainsFunc(chatLog(n), func(l string) bool { return strings.Contains(l, line) })
	})
	return files, lines
}

// pollEach polls has for every node until it holds (at most 5 minutes)
// and returns the time from start at which each first held.
func pollEach(t *testing.T, nodes []*node, start time.Time, has func(*node) bool) []time.Duration {
	t.Helper()
	took := make([]time.Duration, len(nodes))
	err := testutil.WaitFor(5*time.Minute, func() error {
		left := 0
		for i, n := range nodes {
			if took[i] == 0 {
				if has(n) {
					took[i] = time.Since(start).Round(time.Millisecond)
				} else {
					left++
				}
			}
		}
		if left > 0 {
			return fmt.Errorf("%d of %d members not there yet", left, len(nodes))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return took
}

func median(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	return s[len(s)/2]
}

// envInt reads a positive integer from the environment, or def.
func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2 {
		t.Fatalf("%s=%q: want an integer of at least 2", name, v)
	}
	return n
}

// checkInotifyInstances fails early when the members cannot all watch
// their folders: each plain-folder member uses two inotify instances
// (changes, and closes after writing), and Linux allows 128 per user by
// default, shared with every other program of that user.
func checkInotifyInstances(t *testing.T, members int) {
	t.Helper()
	data, err := os.ReadFile("/proc/sys/fs/inotify/max_user_instances")
	if err != nil {
		t.Fatal(err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err == nil && limit < 2*members+32 {
		t.Fatalf("fs.inotify.max_user_instances is %d; %d members need about %d: sysctl -w fs.inotify.max_user_instances=%d",
			limit, members, 2*members+32, 2*members+128)
	}
}

// idleMesh starts an admin and joins members-1 plain-folder members
// through it with one invite, one after another (each waits until it
// serves its folder), then waits until every member lists every other
// and the connections join them all.
func (c *cluster) idleMesh(members int) []*node {
	c.t.Helper()
	admin := c.start("m000", "--no-fuse")
	out, err := c.meshfs("invite", "--uses", strconv.Itoa(members), admin.mnt)
	if err != nil {
		c.t.Fatal(err)
	}
	tok := lastLine(out)
	nodes := []*node{admin}
	for i := 1; i < members; i++ {
		nodes = append(nodes, c.start(fmt.Sprintf("m%03d", i), "--no-fuse", "--join", admin.addr, "--invite", tok))
	}
	// Kill every member at once before the per-node cleanups wait for
	// each: one by one, the survivors would redial each dead member.
	c.t.Cleanup(func() {
		for _, n := range nodes {
			n.cmd.Process.Kill()
		}
	})
	err = testutil.WaitFor(10*time.Minute, func() error { return meshFormed(nodes) })
	if err != nil {
		c.t.Fatal(err)
	}
	return nodes
}

// meshFormed reports an error unless every node's peers file lists every
// other node and the connections they list join them all.
func meshFormed(nodes []*node) error {
	links := map[string][]string{}
	for _, n := range nodes {
		listed, connected := n.peersListed()
		if listed < len(nodes)-1 {
			return fmt.Errorf("%s lists %d of %d members", n.name, listed, len(nodes)-1)
		}
		links[n.name] = connected
	}
	seen := map[string]bool{nodes[0].name: true}
	queue := []string{nodes[0].name}
	for len(queue) > 0 {
		for _, o := range links[queue[0]] {
			if !seen[o] {
				seen[o] = true
				queue = append(queue, o)
			}
		}
		queue = queue[1:]
	}
	if len(seen) < len(nodes) {
		return fmt.Errorf("connections join %d of %d members", len(seen), len(nodes))
	}
	return nil
}

// peersListed reads n's peers file: how many members it lists, and the
// names of those connected.
func (n *node) peersListed() (listed int, connected []string) {
	data, _ := os.ReadFile(n.path("peers"))
	lines := strings.Split(string(data), "\n")
	for _, line := range lines[min(1, len(lines)):] { // below the header
		f := strings.Fields(line)
		if len(f) < 3 {
			break // the end of the table
		}
		listed++
		if f[2] == "connected" {
			connected = append(connected, f[0])
		}
	}
	return listed, connected
}

// cpuTicks reads each node's user plus system CPU time, in USER_HZ ticks.
func cpuTicks(t *testing.T, nodes []*node) []int64 {
	t.Helper()
	ticks := make([]int64, len(nodes))
	for i, n := range nodes {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid))
		if err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
		// Fields after the command name, which ends at the last ')':
		// state is field 3, utime 14 and stime 15.
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		utime, err1 := strconv.ParseInt(f[11], 10, 64)
		stime, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: /proc stat unreadable: %q", n.name, data)
		}
		ticks[i] = utime + stime
	}
	return ticks
}

// rssKiB is a process's resident set in KiB, from /proc/<pid>/status.
func rssKiB(n *node) int64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kib
		}
	}
	return 0
}

// printIdle prints the figures, one "idle:" line each, on stdout.
func printIdle(members int, meshed, window time.Duration, shares []float64, nodes []*node) {
	var sum float64
	var conns, rss int64
	for i, n := range nodes {
		sum += shares[i]
		_, connected := n.peersListed()
		conns += int64(len(connected))
		rss += rssKiB(n)
	}
	sorted := slices.Sorted(slices.Values(shares))
	fmt.Printf("idle: %d plain-folder members on 127.0.0.1, mesh formed after %s\n", members, meshed.Round(time.Second))
	fmt.Printf("idle: connections per member %.1f, RSS per member %.1f MiB\n",
		float64(conns)/float64(members), float64(rss)/float64(members)/1024)
	fmt.Printf("idle: CPU over %s, %% of one core per member: mean %.3f, median %.3f, min %.3f, max %.3f (goal: mean below 0.2)\n",
		window, sum/float64(members), sorted[len(sorted)/2], sorted[0], sorted[len(sorted)-1])
}
