// Package logcheck holds a test and no code: every warning and error that
// meshfs logs must tell the person reading it what to do.
//
// The test parses every non-test Go file of the module and finds the calls
// x.Warn(msg, args...), x.Error(msg, args...), their Context forms, and
// x.Log(ctx, level, msg, args...) at any level other than slog.LevelDebug or
// slog.LevelInfo. Each must have "fix" among its attribute keys: a string
// literal at a key position, or an attribute built as slog.String("fix", …).
// It fails naming file:line for each call without one. There are no
// exceptions.
package logcheck
