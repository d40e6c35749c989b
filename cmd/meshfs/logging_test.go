package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLogSettings(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		args       []string
		wantFormat string
		wantLevel  slog.Level
		wantErr    string
	}{
		{"defaults", nil, nil, "text", slog.LevelInfo, ""},
		{"json flag", nil, []string{"--log-format", "json"}, "json", slog.LevelInfo, ""},
		{"variables", map[string]string{"MESHFS_LOG_FORMAT": "JSON", "MESHFS_LOG_LEVEL": "warn"}, nil,
			"json", slog.LevelWarn, ""},
		{"flag over variable", map[string]string{"MESHFS_LOG_LEVEL": "warn"}, []string{"--log-level", "error"},
			"text", slog.LevelError, ""},
		{"empty variables keep defaults", map[string]string{"MESHFS_LOG_FORMAT": "", "MESHFS_LOG_LEVEL": ""}, nil,
			"text", slog.LevelInfo, ""},
		{"debug flag", nil, []string{"--debug"}, "text", slog.LevelDebug, ""},
		{"debug wins over level", nil, []string{"--debug", "--log-level", "error"}, "text", slog.LevelDebug, ""},
		{"debug variable", map[string]string{"MESHFS_DEBUG": "1"}, nil, "text", slog.LevelDebug, ""},
		{"bad format", nil, []string{"--log-format", "xml"}, "", 0, `--log-format "xml": want text or json`},
		{"bad format variable", map[string]string{"MESHFS_LOG_FORMAT": "logfmt"}, nil, "", 0,
			`--log-format "logfmt" (from MESHFS_LOG_FORMAT): want text or json`},
		{"bad level", nil, []string{"--log-level", "verbose"}, "", 0,
			`--log-level "verbose": want debug, info, warn or error`},
		{"bad level variable", map[string]string{"MESHFS_LOG_LEVEL": "trace"}, nil, "", 0,
			`(from MESHFS_LOG_LEVEL)`},
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
			if opts.logFormat != tc.wantFormat || opts.logLevel != tc.wantLevel {
				t.Errorf("parseMountOptions(%q, env %v) log = %s %v, want %s %v",
					tc.args, tc.env, opts.logFormat, opts.logLevel, tc.wantFormat, tc.wantLevel)
			}
		})
	}
}

// TestNewLoggerJSON checks that with json every line is one object with
// time, level and msg, and that the level filters.
func TestNewLoggerJSON(t *testing.T) {
	var buf bytes.Buffer
	log := newLogger(&buf, "json", slog.LevelInfo)
	log.Debug("hidden")
	log.Info("peer joined", "peer", "bob")
	log.With("pkg", "sync").Warn("retry", "err", "line one\nline two")
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("newLogger(json, info) wrote %d lines, want 2:\n%s", len(lines), buf.String())
	}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q is not a JSON object: %v", line, err)
		}
		for _, key := range []string{"time", "level", "msg"} {
			if _, ok := rec[key]; !ok {
				t.Errorf("line %q lacks %q", line, key)
			}
		}
	}
}

func TestNewLoggerText(t *testing.T) {
	var buf bytes.Buffer
	newLogger(&buf, "text", slog.LevelDebug).Debug("frame", "bytes", 3)
	if got := buf.String(); !strings.HasPrefix(got, "time=") || !strings.Contains(got, "level=DEBUG msg=frame bytes=3") {
		t.Errorf("newLogger(text, debug) wrote %q", got)
	}
}
