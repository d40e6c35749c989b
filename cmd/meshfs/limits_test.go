package main

import (
	"strings"
	"testing"
	"time"

	meshsync "github.com/meshfs/meshfs/sync"
)

func TestApplyLimits(t *testing.T) {
	def := meshsync.DefaultConfig()
	tests := []struct {
		name    string
		env     map[string]string
		check   func(meshsync.Config) bool
		wantErr string
	}{
		{"unset keeps defaults", nil, func(c meshsync.Config) bool {
			return c.MaxFileSize == def.MaxFileSize && c.PartialTTL == def.PartialTTL &&
				c.MaxInboundPerPeer == def.MaxInboundPerPeer && c.MaxInboundTotal == def.MaxInboundTotal &&
				c.MinFreePercent == def.MinFreePercent
		}, ""},
		{"size in MiB", map[string]string{"MESHFS_MAX_FILE_SIZE": "500MiB"},
			func(c meshsync.Config) bool { return c.MaxFileSize == 500<<20 }, ""},
		{"size short unit", map[string]string{"MESHFS_MAX_FILE_SIZE": "2G"},
			func(c meshsync.Config) bool { return c.MaxFileSize == 2<<30 }, ""},
		{"size in bytes", map[string]string{"MESHFS_MAX_FILE_SIZE": "1048576"},
			func(c meshsync.Config) bool { return c.MaxFileSize == 1<<20 }, ""},
		{"ttl", map[string]string{"MESHFS_PARTIAL_TTL": "90m"},
			func(c meshsync.Config) bool { return c.PartialTTL == 90*time.Minute }, ""},
		{"counts", map[string]string{"MESHFS_MAX_INBOUND_PER_PEER": "2", "MESHFS_MAX_INBOUND": " 8 "},
			func(c meshsync.Config) bool { return c.MaxInboundPerPeer == 2 && c.MaxInboundTotal == 8 }, ""},
		{"percent", map[string]string{"MESHFS_MIN_FREE_PERCENT": "5%"},
			func(c meshsync.Config) bool { return c.MinFreePercent == 5 }, ""},
		{"zero percent", map[string]string{"MESHFS_MIN_FREE_PERCENT": "0"},
			func(c meshsync.Config) bool { return c.MinFreePercent == 0 }, ""},
		{"bad size", map[string]string{"MESHFS_MAX_FILE_SIZE": "-3M"}, nil, `MESHFS_MAX_FILE_SIZE="-3M": want a positive size`},
		{"overflowing size", map[string]string{"MESHFS_MAX_FILE_SIZE": "99999999999T"}, nil, "MESHFS_MAX_FILE_SIZE"},
		{"bad ttl", map[string]string{"MESHFS_PARTIAL_TTL": "tomorrow"}, nil, `MESHFS_PARTIAL_TTL="tomorrow": want a positive duration`},
		{"zero ttl", map[string]string{"MESHFS_PARTIAL_TTL": "0s"}, nil, "MESHFS_PARTIAL_TTL"},
		{"zero count", map[string]string{"MESHFS_MAX_INBOUND": "0"}, nil, `MESHFS_MAX_INBOUND="0": want a whole number`},
		{"percent too big", map[string]string{"MESHFS_MIN_FREE_PERCENT": "100"}, nil, "MESHFS_MIN_FREE_PERCENT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := meshsync.DefaultConfig()
			err := applyLimits(&cfg, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg) {
				t.Errorf("config after %v = %+v", tc.env, cfg)
			}
		})
	}
}
