package main

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v2"
)

// logLevels are the names --log-level accepts.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// logSettings reads --log-format and --log-level; an empty value (an
// empty variable) keeps the default, as for the limits. --debug, older
// than --log-level, means --log-level debug whatever that flag says.
func logSettings(c *cli.Context) (format string, level slog.Level, err error) {
	format = cmp.Or(strings.ToLower(strings.TrimSpace(c.String("log-format"))), "text")
	if format != "text" && format != "json" {
		return "", 0, badValue(c, "log-format", "MESHFS_LOG_FORMAT", fmt.Errorf("want text or json"))
	}
	level, ok := logLevels[cmp.Or(strings.ToLower(strings.TrimSpace(c.String("log-level"))), "info")]
	if !ok {
		return "", 0, badValue(c, "log-level", "MESHFS_LOG_LEVEL", fmt.Errorf("want debug, info, warn or error"))
	}
	if c.Bool("debug") {
		level = slog.LevelDebug
	}
	return format, level, nil
}

// newLogger builds the root logger writing to w; format is "text" or
// "json" (logSettings has checked it).
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
