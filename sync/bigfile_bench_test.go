//go:build linux

package sync

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBigFileBench is the big-file line of `make bench`: a real (not
// sparse) file of MESHFS_BENCH_BIG_GB GiB (default 10) moved between two
// engines on the in-memory network, once in the block size its size calls
// for and once in 64 MiB blocks (pieces.go), with its throughput (from the
// close in the outbox to the verified file in the inbox: hashing, sending,
// checking, writing with O_DIRECT, fsync) and the process's peak RSS, both
// engines included. The source is written first and is mostly in the page
// cache, so this measures the engines, not the disk's reads. It runs only
// with MESHFS_BENCH=1 and needs twice the file's size free in $TMPDIR.
func TestBigFileBench(t *testing.T) {
	if os.Getenv("MESHFS_BENCH") == "" {
		t.Skip("set MESHFS_BENCH=1 (make bench) to run the benchmark")
	}
	size := int64(10) << 30
	if gb, err := strconv.Atoi(os.Getenv("MESHFS_BENCH_BIG_GB")); err == nil && gb > 0 {
		size = int64(gb) << 30
	}
	src := filepath.Join(t.TempDir(), "src.bin")
	writeRandom(t, src, size)
	for _, bs := range []int{DefaultConfig().BlockSize, maxBlockSize} {
		secs, rss := benchBigFile(t, src, size, bs)
		used := chooseBlockSize(size, bs)
		fmt.Printf("bigfile: %d GiB in %d MiB blocks: %.1f s, %.0f MB/s, peak RSS %d MiB (both engines)\n",
			size>>30, used>>20, secs, float64(size)/secs/1e6, rss>>20)
	}
}

// benchBigFile sends the file at src from one engine to another with the
// configured block size bs and returns the seconds it took and the peak
// RSS meanwhile.
func benchBigFile(t *testing.T, src string, size int64, bs int) (float64, int64) {
	n, a, b := pair(t, func(c *Config) {
		c.BlockSize = bs
		c.Logger = slog.New(slog.DiscardHandler) // a debug line per piece would be measured too
	})
	defer n.shutdown()
	if err := os.Link(src, filepath.Join(a.root, "outbox", "big.bin")); err != nil {
		t.Fatal(err)
	}
	resetPeakRSS(t)
	start := time.Now()
	a.engine().OutboxClosed("big.bin")
	waitPlaced(t, b, "inbox/alice/big.bin", size)
	secs := time.Since(start).Seconds()
	rss := peakRSS(t)
	os.Remove(filepath.Join(b.root, "inbox", "alice", "big.bin")) // the disk holds one copy at a time
	return secs, rss
}

// resetPeakRSS starts the process's peak RSS (VmHWM) over from its RSS now.
func resetPeakRSS(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
}

// peakRSS is the process's peak RSS (VmHWM) in bytes.
func peakRSS(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}
