package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	meshsync "github.com/meshfs/meshfs/sync"
	"github.com/urfave/cli/v2"
)

// limit is a mount flag that sets one sync limit, with its environment
// variable as the fallback. Its value is a string parsed here, not by
// urfave, so a bad one is a usage error that says what is wanted.
type limit struct {
	flag, env string
	def       string // shown in --help; TestLimitDefaults checks it is sync's default
	usage     string // a `WORD` in it names the value in --help
	set       func(cfg *meshsync.Config, v string) error
}

// limits are the mount flags for sync.Config, in the order --help shows them.
var limits = []limit{
	{"max-file-size", "MESHFS_MAX_FILE_SIZE", "1TiB",
		"largest file sent or accepted, `SIZE` such as 500MiB or 2G (at most 1TiB; free space refuses what does not fit)",
		func(cfg *meshsync.Config, v string) (err error) { cfg.MaxFileSize, err = parseFileSize(v); return }},
	{"partial-ttl", "MESHFS_PARTIAL_TTL", "24h",
		"unfinished incoming files are kept this `DURATION` for resuming, then removed",
		func(cfg *meshsync.Config, v string) (err error) { cfg.PartialTTL, err = parseTTL(v); return }},
	{"max-inbound-per-peer", "MESHFS_MAX_INBOUND_PER_PEER", "4",
		"`N` files received at once from one member",
		func(cfg *meshsync.Config, v string) (err error) { cfg.MaxInboundPerPeer, err = parseCount(v); return }},
	{"max-inbound", "MESHFS_MAX_INBOUND", "32",
		"`N` files received at once from all members",
		func(cfg *meshsync.Config, v string) (err error) { cfg.MaxInboundTotal, err = parseCount(v); return }},
	{"min-free-percent", "MESHFS_MIN_FREE_PERCENT", "1",
		"refuse files that would leave less than `P` percent of the disk free",
		func(cfg *meshsync.Config, v string) (err error) { cfg.MinFreePercent, err = parsePercent(v); return }},
}

// limitFlags are the mount command's flags for the sync limits.
func limitFlags() []cli.Flag {
	flags := make([]cli.Flag, len(limits))
	for i, l := range limits {
		flags[i] = &cli.StringFlag{Name: l.flag, EnvVars: []string{l.env}, Value: l.def,
			Usage: l.usage}
	}
	return flags
}

// syncConfig is sync's default configuration with the limit flags applied.
// An empty value (an empty variable) keeps the default.
func syncConfig(c *cli.Context) (meshsync.Config, error) {
	cfg := meshsync.DefaultConfig()
	for _, l := range limits {
		val := strings.TrimSpace(c.String(l.flag))
		if val == "" {
			continue
		}
		if err := l.set(&cfg, val); err != nil {
			return cfg, badValue(c, l.flag, l.env, err)
		}
	}
	return cfg, nil
}

// badValue is the usage error for a flag whose value does not parse. It
// also names the environment variable when the value may have come from
// there: urfave does not say, so a variable holding the same value counts.
func badValue(c *cli.Context, flag, env string, err error) error {
	val := c.String(flag)
	if v, ok := os.LookupEnv(env); ok && v == val {
		return cli.Exit(fmt.Sprintf("--%s %q (from %s): %v", flag, val, env, err), 2)
	}
	return cli.Exit(fmt.Sprintf("--%s %q: %v", flag, val, err), 2)
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

// parseFileSize reads a size that sync accepts as its largest file, so
// one over the protocol's cap fails here, before any state is created.
func parseFileSize(s string) (int64, error) {
	n, err := parseSize(s)
	if err == nil && n > meshsync.MaxFileSizeLimit {
		err = fmt.Errorf("at most 1TiB, the largest file a transfer can carry")
	}
	return n, err
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
