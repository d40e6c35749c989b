package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	meshsync "github.com/meshfs/meshfs/sync"
)

// limitsHelp documents the limit variables in 'meshfs mount --help'.
const limitsHelp = "\n\nLimits (environment variables, read at mount):\n" +
	"  MESHFS_MAX_FILE_SIZE=SIZE          largest file sent or accepted (default and at most 1TiB; e.g. 500MiB, 2G)\n" +
	"  MESHFS_PARTIAL_TTL=DURATION        unfinished incoming files are removed after this (default 24h)\n" +
	"  MESHFS_MAX_INBOUND_PER_PEER=N      files received at once from one member (default 4)\n" +
	"  MESHFS_MAX_INBOUND=N               files received at once from all members (default 32)\n" +
	"  MESHFS_MIN_FREE_PERCENT=P          refuse files that would leave less than P% of the disk free (default 1)"

// applyLimits sets the sync limits given in the environment (getenv is
// os.Getenv in production). An unset or empty variable keeps the default;
// a malformed one is an error naming it.
func applyLimits(cfg *meshsync.Config, getenv func(string) string) error {
	vars := []struct {
		name  string
		parse func(string) error
	}{
		{"MESHFS_MAX_FILE_SIZE", func(v string) (err error) { cfg.MaxFileSize, err = parseSize(v); return }},
		{"MESHFS_PARTIAL_TTL", func(v string) (err error) { cfg.PartialTTL, err = parseTTL(v); return }},
		{"MESHFS_MAX_INBOUND_PER_PEER", func(v string) (err error) { cfg.MaxInboundPerPeer, err = parseCount(v); return }},
		{"MESHFS_MAX_INBOUND", func(v string) (err error) { cfg.MaxInboundTotal, err = parseCount(v); return }},
		{"MESHFS_MIN_FREE_PERCENT", func(v string) (err error) { cfg.MinFreePercent, err = parsePercent(v); return }},
	}
	for _, v := range vars {
		val := strings.TrimSpace(getenv(v.name))
		if val == "" {
			continue
		}
		if err := v.parse(val); err != nil {
			return fmt.Errorf("%s=%q: %w", v.name, val, err)
		}
	}
	return nil
}

// sizeUnits are the suffixes parseSize accepts, longest first; K, M, G
// and T are binary, as in ls -h.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40}, {"b", 1},
}

// parseSize reads a positive byte count: 1048576, 500MiB, 2G, 64k.
func parseSize(s string) (int64, error) {
	num, mult := strings.ToLower(s), int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("want a positive size such as 500MiB, 2G or 1048576")
	}
	return n * mult, nil
}

// parseTTL reads a positive duration: 24h, 90m.
func parseTTL(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration such as 24h or 90m")
	}
	return d, nil
}

// parseCount reads a positive whole number.
func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 1<<20 {
		return 0, fmt.Errorf("want a whole number from 1 to %d", 1<<20)
	}
	return n, nil
}

// parsePercent reads a percentage from 0 to 99.
func parsePercent(s string) (float64, error) {
	p, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || p < 0 || p >= 100 {
		return 0, fmt.Errorf("want a percentage from 0 to 99, such as 5")
	}
	return p, nil
}
