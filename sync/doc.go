// Package sync moves files and chat between the members of a mesh and keeps
// their state on disk. Importers alias it meshsync: the name clashes with the
// standard library's sync.
//
// # What it owns
//
// Under Config.Root (the tree the FUSE layer shows): outbox/ (files the user
// wants sent; read in place, never copied), sent/ (files every member
// verified), inbox/<peer-folder>/ (verified files from each peer) and
// inbox/.meshfs-partials/ (hidden partial files and their manifests).
// Under Config.StateDir: outgoing/<id>.json (per-member delivery state of each
// outgoing transfer), completed.json and its journal completed.jsonl
// (recently completed inbound transfer ids, so a replayed OFFER is answered
// with ACK and not a second copy),
// folders.json (peer ID to inbox folder name, stable forever), and the chat
// store, write-ahead file and log kept by package chat (chat.jsonl,
// chat.wal, chat.log).
//
// # Protocol
//
// Transfers ride on the mesh's BYTES frames; the first byte of each payload
// is the message kind (proto.go). A sender OFFERs a manifest (BLAKE3 per
// block, and over the block list for the whole file), the receiver ACCEPTs with a bitmap of the
// blocks it already holds (resume) or REJECTs with a reason, the sender sends
// the missing CHUNKs and then DONE on the bulk queue (DONE must not overtake
// the chunks), and the receiver verifies, fsyncs, renames the file into
// place without replacing anything and ACKs.
//
// Partial files are named <full peer ID>-<transfer ID>.part: the short ID
// alone could be ground by a malicious member to collide with another's.
//
// # Goroutines
//
// Start launches, all owned by the Engine and stopped by Close:
//   - the outbox loop: hashes closed outbox files, creates delivery records,
//     handles removals and moves fully delivered files to sent/;
//   - per connected peer, one sender (works through that peer's deliveries)
//     and one receiver (writes that peer's chunks, verifies and renames);
//   - the chat loop (stores and renders received messages) and the chat
//     broadcaster (sends own messages in order, answers catch-up requests);
//   - the janitor (removes stale partials hourly).
//
// HandleEvent never does disk or network I/O: it routes each event to one of
// those goroutines through bounded channels, blocking when one is full, which
// is back-pressure on that peer's connection.
//
// # Imports
//
// The standard library, mesh (types only), chat, internal/atomicfile and
// internal/safetext, golang.org/x/sys/unix, golang.org/x/text and BLAKE3.
// Never fs, folder, go-fuse or fsnotify (internal/layers checks it).
package sync
