// Package chat keeps the room's conversation on disk: the message store
// (chat.jsonl: every line said here or received, with its author and
// per-author sequence number) and the rendered log (chat.log: what the
// chat file shows, one "[time] name: text" line each, plus "* ..." event
// lines). Both are append-only and survive restarts; the store is what
// catch-up after an absence is answered from.
//
// A Store starts no goroutine. It is safe for concurrent use.
//
// # Imports
//
// mesh (for the peer ID and chat message types), internal/safetext and the
// standard library; never sync, fs or folder (internal/layers checks it).
package chat
