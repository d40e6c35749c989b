// Package chat keeps the room's conversation on disk: the message store
// (chat.jsonl: every line said here or received and every event, with
// author and per-author sequence number) and the rendered log (chat.log:
// what the chat file shows, one "[time] name: text" line each, plus
// "* ..." event lines). Both are append-only and survive restarts; the
// store is what catch-up after an absence is answered from, and what the
// log is rebuilt from.
//
// # Durability
//
// The promise: once AppendOwn returns a line as sent, that line is in
// chat.jsonl on disk and survives a crash. To keep it without making the
// writer wait on the disk twice while it is busy with file transfers, the
// store is the write-ahead file and the only one fsynced on that path, with
// group commit: one fsync covers every line written while it ran, so a
// line waits for at most two fsyncs, however many writers there are
// (commit.go). The log is written at once but fsynced only by Sync, which
// the owner calls lazily; Open repairs a log that a crash left behind the
// store (repair.go). Received lines and events are not waited for: a
// received line lost in a crash is asked for again by catch-up.
//
// A Store starts no goroutine. It is safe for concurrent use.
//
// # Imports
//
// mesh (for the peer ID and chat message types), internal/safetext and the
// standard library; never sync, fs or folder (internal/layers checks it).
package chat
