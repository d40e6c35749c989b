package main

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	meshsync "github.com/meshfs/meshfs/sync"
	"github.com/urfave/cli/v2"
)

// mountEnv are the variables parseMount clears, so the tests do not
// depend on the environment they run in.
var mountEnv = []string{
	"MESHFS_MAX_FILE_SIZE", "MESHFS_PARTIAL_TTL", "MESHFS_MAX_INBOUND_PER_PEER", "MESHFS_MAX_INBOUND",
	"MESHFS_MIN_FREE_PERCENT", "MESHFS_LOG_FORMAT", "MESHFS_LOG_LEVEL", "MESHFS_DEBUG",
	"MESHFS_LISTEN", "MESHFS_JOIN", "MESHFS_INVITE", "MESHFS_NAME", "MESHFS_STATE", "MESHFS_NO_FUSE",
}

// parseMount runs the real mount command's flag parsing on args, with
// env as the only MESHFS_ variables, and returns what parseMountOptions
// made of it. Nothing is mounted or created.
func parseMount(t *testing.T, env map[string]string, args ...string) (mountOptions, error) {
	t.Helper()
	for _, k := range mountEnv {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var opts mountOptions
	var perr error
	cmd := mountCommand()
	cmd.Action = func(c *cli.Context) error { opts, perr = parseMountOptions(c); return nil }
	app := &cli.App{Writer: io.Discard, ErrWriter: io.Discard, Commands: []*cli.Command{cmd}}
	dir := t.TempDir()
	args = append(append([]string{"meshfs", "mount", "--state", dir + "/state"}, args...), dir)
	if err := app.Run(args); err != nil {
		t.Fatalf("urfave rejected %q: %v", args, err)
	}
	return opts, perr
}

// wantUsageError checks that err is an exit-2 error containing want.
func wantUsageError(t *testing.T, err error, want string) {
	t.Helper()
	var exit cli.ExitCoder
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want an exit-2 error containing %q", err, want)
	}
}

func TestSyncConfig(t *testing.T) {
	def := meshsync.DefaultConfig()
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		check   func(meshsync.Config) bool
		wantErr string
	}{
		{"unset keeps defaults", nil, nil, func(c meshsync.Config) bool {
			return c.MaxFileSize == def.MaxFileSize && c.PartialTTL == def.PartialTTL &&
				c.MaxInboundPerPeer == def.MaxInboundPerPeer && c.MaxInboundTotal == def.MaxInboundTotal &&
				c.MinFreePercent == def.MinFreePercent
		}, ""},
		{"empty variable keeps default", map[string]string{"MESHFS_MAX_FILE_SIZE": ""}, nil,
			func(c meshsync.Config) bool { return c.MaxFileSize == def.MaxFileSize }, ""},
		{"size flag in MiB", nil, []string{"--max-file-size", "500MiB"},
			func(c meshsync.Config) bool { return c.MaxFileSize == 500<<20 }, ""},
		{"size variable, short unit", map[string]string{"MESHFS_MAX_FILE_SIZE": "2G"}, nil,
			func(c meshsync.Config) bool { return c.MaxFileSize == 2<<30 }, ""},
		{"size in bytes", nil, []string{"--max-file-size=1048576"},
			func(c meshsync.Config) bool { return c.MaxFileSize == 1<<20 }, ""},
		{"size at the cap", nil, []string{"--max-file-size", "1TiB"},
			func(c meshsync.Config) bool { return c.MaxFileSize == meshsync.MaxFileSizeLimit }, ""},
		{"flag over variable", map[string]string{"MESHFS_MAX_FILE_SIZE": "2G"}, []string{"--max-file-size", "1G"},
			func(c meshsync.Config) bool { return c.MaxFileSize == 1<<30 }, ""},
		{"flag over a bad variable", map[string]string{"MESHFS_PARTIAL_TTL": "soon"}, []string{"--partial-ttl", "2h"},
			func(c meshsync.Config) bool { return c.PartialTTL == 2*time.Hour }, ""},
		{"ttl variable", map[string]string{"MESHFS_PARTIAL_TTL": "90m"}, nil,
			func(c meshsync.Config) bool { return c.PartialTTL == 90*time.Minute }, ""},
		{"counts", map[string]string{"MESHFS_MAX_INBOUND_PER_PEER": "2", "MESHFS_MAX_INBOUND": " 8 "},
			[]string{"--max-inbound-per-peer", "3"},
			func(c meshsync.Config) bool { return c.MaxInboundPerPeer == 3 && c.MaxInboundTotal == 8 }, ""},
		{"percent", nil, []string{"--min-free-percent", "5%"},
			func(c meshsync.Config) bool { return c.MinFreePercent == 5 }, ""},
		{"zero percent", map[string]string{"MESHFS_MIN_FREE_PERCENT": "0"}, nil,
			func(c meshsync.Config) bool { return c.MinFreePercent == 0 }, ""},
		{"bad size flag", nil, []string{"--max-file-size", "-3M"}, nil,
			`--max-file-size "-3M": want a positive size`},
		{"bad size variable", map[string]string{"MESHFS_MAX_FILE_SIZE": "lots"}, nil, nil,
			`--max-file-size "lots" (from MESHFS_MAX_FILE_SIZE): want a positive size`},
		{"size over the cap", nil, []string{"--max-file-size", "1025G"}, nil, `--max-file-size "1025G": at most 1TiB`},
		{"overflowing size", nil, []string{"--max-file-size", "99999999999T"}, nil, "--max-file-size"},
		{"bad ttl", nil, []string{"--partial-ttl", "tomorrow"}, nil, `--partial-ttl "tomorrow": want a positive duration`},
		{"zero ttl variable", map[string]string{"MESHFS_PARTIAL_TTL": "0s"}, nil, nil, "(from MESHFS_PARTIAL_TTL)"},
		{"zero count", nil, []string{"--max-inbound", "0"}, nil, `--max-inbound "0": want a whole number`},
		{"bad count variable", map[string]string{"MESHFS_MAX_INBOUND_PER_PEER": "many"}, nil, nil,
			`--max-inbound-per-peer "many" (from MESHFS_MAX_INBOUND_PER_PEER)`},
		{"percent too big", map[string]string{"MESHFS_MIN_FREE_PERCENT": "100"}, nil, nil, "--min-free-percent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := parseMount(t, tc.env, tc.args...)
			if tc.wantErr != "" {
				wantUsageError(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(opts.sync) {
				t.Errorf("parseMountOptions(%q, env %v).sync = %+v", tc.args, tc.env, opts.sync)
			}
		})
	}
}

// TestLimitDefaults checks that the defaults --help shows are sync's.
func TestLimitDefaults(t *testing.T) {
	var got meshsync.Config
	for _, l := range limits {
		if err := l.set(&got, l.def); err != nil {
			t.Fatalf("default of --%s: %v", l.flag, err)
		}
	}
	want := meshsync.DefaultConfig()
	if got.MaxFileSize != want.MaxFileSize || got.PartialTTL != want.PartialTTL ||
		got.MaxInboundPerPeer != want.MaxInboundPerPeer || got.MaxInboundTotal != want.MaxInboundTotal ||
		got.MinFreePercent != want.MinFreePercent {
		t.Errorf("limits from the flag defaults = %+v, want sync.DefaultConfig's %+v", got, want)
	}
}
