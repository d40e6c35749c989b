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
// The promise: once the durable function of Stage returns (AppendOwn does
// both), the line survives a crash (in chat.wal, and from the next Sync on
// in chat.jsonl). The line may reach other members before that, so chat is
// not as slow as this disk's fsync; its sequence number is reserved on disk
// first (chat.seq, reserve.go), so a crash that loses it never lets its
// number name another line. (So a line whose write fails, because this disk
// did, may still have reached the others.) To keep it
// without making the writer wait on the disk twice, or on the journal,
// while the disk is busy with file transfers, the line is also written
// into chat.wal, a preallocated file overwritten in place, and that is the
// only file synced on the writer's path (wal.go): one fdatasync covers
// every line written while it ran (group commit, commit.go), so a line
// waits for at most two, however many writers there are. The store and
// the log are written at once but fsynced only by Sync, which the owner
// calls lazily; Open takes back from the wal the own lines the store lost
// and repairs a log that a crash left behind the store (repair.go).
// Received lines and events are not waited for: a received line lost in a
// crash is asked for again by catch-up.
//
// A Store starts no goroutine. It is safe for concurrent use.
//
// # Imports
//
// mesh (for the peer ID and chat message types), internal/safetext,
// internal/atomicfile (to sync a folder) and the standard library; never
// sync, fs or folder (internal/layers checks it).
package chat
