//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// chatBenchLines is how many lines each chat row times.
const chatBenchLines = 50

// TestChatBench is the chat half of `make bench`: the time from writing a
// line at alice's chat file (open, write, close, as `echo hi > chat` does)
// until it shows in bob's chat file, polled every millisecond through FUSE
// from the moment the write starts, as a reader there would. It is measured quiet, again while bob receives large
// files from carol, and for lines carol writes while she sends them: chat
// must stay instant while files move. It runs
// only with MESHFS_BENCH=1; MESHFS_CHATBENCH_MB sets the size of the files
// carol sends (default 512).
func TestChatBench(t *testing.T) {
	if os.Getenv("MESHFS_BENCH") == "" {
		t.Skip("set MESHFS_BENCH=1 (make bench) to run the benchmark")
	}
	testutil.RequireFUSE(t)
	size := benchEnv(t, "MESHFS_CHATBENCH_MB", 512) << 20
	src := t.TempDir() + "/load.bin"
	writeRandomFile(t, src, size)
	nodes := newCluster(t).fullMesh("alice", "bob", "carol")
	alice, bob, carol := nodes[0], nodes[1], nodes[2]

	var rows [][]string
	var missed []string
	add := func(what string, lat []time.Duration, targeted bool) {
		for _, r := range []struct {
			p      int
			target time.Duration
		}{{50, 5 * time.Millisecond}, {99, 20 * time.Millisecond}} {
			metric, got := fmt.Sprintf("%s p%d", what, r.p), percentile(lat, r.p)
			if !targeted {
				rows = append(rows, []string{metric, ms(got), "", "", "", ""})
				continue
			}
			row := chatRow(metric, got, r.target)
			if row[5] == "MISS" {
				missed = append(missed, fmt.Sprintf("%s: %s, target < %s", metric, ms(got), ms(r.target)))
			}
			rows = append(rows, row)
		}
	}
	syscall.Sync()
	add("(f) chat alice -> bob, quiet", chatLines(t, alice, bob, "quiet", nil), true)
	l := startLoad(t, src, size, carol, bob, alice)
	busy := chatLines(t, alice, bob, "busy", l.busy)
	during := l.during.Swap(0)
	// carol's lines share her connection to bob with the file's chunks.
	same := chatLines(t, carol, bob, "same", l.busy)
	l.stop()
	add(fmt.Sprintf("(f) chat alice -> bob, bob receiving %d MiB files from carol (%d of %d lines mid-transfer)",
		size>>20, during, chatBenchLines), busy, true)
	add(fmt.Sprintf("(f) chat carol -> bob, carol sending bob %d MiB files (%d of %d lines mid-transfer)",
		size>>20, l.during.Load(), chatBenchLines), same, false) // no target: it waits behind the file
	printChatTable(rows)
	for _, m := range missed {
		t.Errorf("missed: %s", m)
	}
}

// chatRow is one table row: measured value against the target.
func chatRow(metric string, got, target time.Duration) []string {
	verdict := "ok"
	if got >= target {
		verdict = "MISS"
	}
	return []string{metric, ms(got), "", "", "< " + ms(target), verdict}
}

// percentile is the p-th percentile of lat (nearest rank).
func percentile(lat []time.Duration, p int) time.Duration {
	s := slices.Sorted(slices.Values(lat))
	return s[min(len(s)-1, (len(s)*p+99)/100-1)]
}

// chatLines writes chatBenchLines lines to from's chat and times each until
// bob's chat file holds it. busy, if not nil, reports whether a transfer is
// in flight; lines written while it is true are counted by the caller.
func chatLines(t *testing.T, from, to *node, tag string, busy func() bool) []time.Duration {
	t.Helper()
	var lat, writes []time.Duration
	defer func() {
		if len(writes) > 0 {
			t.Logf("%s: the write(2)+close(2) at %s alone took p50 %s, p99 %s", tag, from.name,
				ms(percentile(writes, 50)), ms(percentile(writes, 99)))
		}
	}()
	for i := range chatBenchLines {
		if busy != nil {
			busy()
		}
		line := fmt.Sprintf("chatbench %s %d %d", tag, i, time.Now().UnixNano())
		// The reader at the other end watches from the moment the line is
		// written, as a person there would: it need not wait for the
		// writer's echo to return.
		type sight struct {
			after time.Duration
			err   error
		}
		seen := make(chan sight, 1)
		start := time.Now()
		go func() {
			err := pollEvery(time.Millisecond, 10*time.Second, func() bool {
				data, _ := os.ReadFile(to.path("chat"))
				return bytes.Contains(data, []byte(line))
			})
			seen <- sight{time.Since(start), err}
		}()
		if err := os.WriteFile(from.path("chat"), []byte(line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		writes = append(writes, time.Since(start))
		got := <-seen
		if got.err != nil {
			t.Fatalf("chat line %d never reached %s: %v", i, to.name, got.err)
		}
		lat = append(lat, got.after)
	}
	return lat
}

// pollEvery checks cond every interval until it holds or timeout passes.
func pollEvery(interval, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not true after %v", timeout)
		}
		time.Sleep(interval)
	}
	return nil
}

// load sends the source from one node again and again until stopped, so
// its receivers are always busy writing a large file. The test owns its
// goroutine: stop ends it and waits.
type load struct {
	quit, done chan struct{}
	inFlight   atomic.Bool  // a file is being copied or sent to the watched receiver
	during     atomic.Int64 // lines timed while inFlight
	err        atomic.Pointer[error]
}

// startLoad starts sending src from `from`; it returns once the first file
// is being sent to watch (its outbox xattr says "sending").
func startLoad(t *testing.T, src string, size int64, from, watch *node, others ...*node) *load {
	t.Helper()
	l := &load{quit: make(chan struct{}), done: make(chan struct{})}
	go l.run(src, size, from, watch, others)
	err := testutil.WaitFor(time.Minute, func() error {
		if e := l.err.Load(); e != nil {
			return *e
		}
		if !l.inFlight.Load() || !sending(from.path("outbox", "load-1.bin"), watch.name) {
			return fmt.Errorf("load-1.bin not being sent to %s yet", watch.name)
		}
		return nil
	})
	if err != nil {
		l.stop()
		t.Fatal(err)
	}
	return l
}

// sending reports whether the outbox file's delivery to member is under way.
func sending(p, member string) bool {
	buf := make([]byte, 64)
	n, err := syscall.Getxattr(p, "user.meshfs."+member, buf)
	return err == nil && strings.HasPrefix(string(buf[:n]), "sending")
}

// busy counts a line as timed under load if a transfer is in flight.
func (l *load) busy() bool {
	b := l.inFlight.Load()
	if b {
		l.during.Add(1)
	}
	return b
}

func (l *load) run(src string, size int64, from, watch *node, others []*node) {
	defer close(l.done)
	for i := 1; ; i++ {
		name := fmt.Sprintf("load-%d.bin", i)
		l.inFlight.Store(true)
		if out, err := exec.Command("cp", src, from.path("outbox", name)).CombinedOutput(); err != nil {
			err = fmt.Errorf("cp: %v: %s", err, out)
			l.err.Store(&err)
			return
		}
		got := watch.path("inbox", from.name, name)
		err := pollEvery(time.Millisecond, 5*time.Minute, func() bool {
			select {
			case <-l.quit:
				return true
			default:
			}
			fi, err := os.Stat(got)
			return err == nil && fi.Size() == size
		})
		l.inFlight.Store(false)
		if err != nil {
			l.err.Store(&err)
			return
		}
		// Copies that arrived are deleted; the rest go with the test's
		// temp folder.
		os.Remove(got)
		os.Remove(from.path("sent", name))
		for _, o := range others {
			os.Remove(o.path("inbox", from.name, name))
		}
		select {
		case <-l.quit:
			return
		default:
		}
	}
}

// stop ends the load and waits for its goroutine.
func (l *load) stop() {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	<-l.done
}

// printChatTable prints rows in the style of TestBench's table.
func printChatTable(rows [][]string) {
	fmt.Printf("\nmeshfs chat bench: %d lines per row, bob's chat polled every 1 ms, %d CPUs, %s\n\n%s",
		chatBenchLines, numCPU(), cpuModel(), benchTable(rows))
}
