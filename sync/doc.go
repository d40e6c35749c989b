// Package sync moves files and chat between the members of a mesh and keeps
// their state on disk. Importers alias it meshsync: the name clashes with the
// standard library's sync.
//
// # Reading one file's way
//
// Sending: outbound.go (a closed outbox file becomes a delivery record, one
// per member), then send.go (each connection's sender OFFERs it, sends the
// CHUNKs the receiver lacks, then DONE, and records the ACK or REJECT).
// Receiving: engine.go routeBytes hands the messages to receive.go (each
// connection's receiver answers the OFFER, writes verified blocks, checks
// the whole file at DONE) and deliver.go places it in inbox/ without
// following links or replacing anything, except the file it placed for a
// transfer the OFFER says it replaces, while that file is unchanged.
// proto.go is the wire format of these messages; manifest.go the BLAKE3
// hashing; zero.go the blocks of zeros, which travel without data and stay
// holes at the receiver; pieces.go the blocks over 1 MiB (files over
// 16 GiB), which travel, are hashed and written in 1 MiB pieces. Folders
// and symbolic links travel as OFFERs without blocks (entries.go,
// place_entries.go); a chmod after the OFFER follows as an ATTR (attr.go).
//
// # What it owns
//
// Under Config.Root (the tree the frontends show): outbox/ (files the user
// wants sent; read in place, never copied), sent/ (files every member
// verified), inbox/<peer-folder>/ (verified files from each peer) and
// inbox/.meshfs-partials/ (hidden partial files and their manifests).
// Under Config.StateDir: outgoing/<id>.json (per-member delivery state of
// each outgoing transfer), completed.json and its journal completed.jsonl
// (recently completed inbound transfer IDs, so a replayed OFFER is answered
// with ACK and not a second copy, and where each one's file was placed, so
// a later chmod or a replacing version reaches it), folders.json (peer ID to
// inbox folder name, stable forever), and the chat store, write-ahead file
// and log of package chat (chat.jsonl, chat.wal, chat.log).
//
// # State and locks
//
// The Engine's state has owners, each with its own mutex, and no code holds
// two of them at once: the peer set (peers.go: live connections, display
// names), outbound (records and deliveries), inbound (partial transfers,
// completed IDs and placements, inbox folders) and the chat delivery (chat.go). A sender
// owns its flights and a receiver its open partials; both run on their
// connection's goroutine.
//
// # Protocol
//
// Transfers ride on the mesh's BYTES frames; the first byte of each payload
// is the message kind (proto.go). Each side first sends HELLO with the sync
// protocol Version; nothing is offered to a member of another version. A
// sender OFFERs a manifest (a BLAKE3 hash per block and one over the block
// list for the whole file; for a large file the hashes follow in DONE), the
// receiver ACCEPTs with a bitmap of the blocks it already holds (resume) or
// REJECTs with a code and a reason fit to show (never a local path), the
// sender sends the missing CHUNKs and then DONE on the bulk queue (DONE must
// not overtake the chunks), and the receiver verifies, fsyncs, renames the
// file into place without replacing anything (but the unchanged file of a
// transfer the OFFER replaces) and ACKs.
//
// Partial files are named <full peer ID>-<transfer ID>.part: the short ID
// alone could be ground by a malicious member to collide with another's.
//
// # Goroutines
//
// Start launches, all owned by the Engine and stopped by Close:
//   - the outbox loop: hashes closed outbox files, creates delivery records,
//     handles removals and moves fully delivered files to sent/;
//   - per connected peer, one sender and one receiver, plus the receiver's
//     block writer (write-behind); these three run on OS threads of their
//     own at a lower priority (background_linux.go), so a transfer takes
//     only the CPU that chat, FUSE and the network leave;
//   - the room loop (room.go): own chat lines out, received lines verified,
//     stored in each author's order and passed on, HAVE answered, receipts
//     kept and passed on; with the lazy syncer of the chat store;
//   - the janitor (removes stale partials hourly).
//
// HandleEvent never does disk or network I/O: it routes each event to one of
// those goroutines through bounded channels, blocking when one is full, which
// is back-pressure on that peer's connection.
//
// # Imports
//
// The standard library, mesh (types only), chat, internal/atomicfile,
// internal/present, internal/safetext and internal/wire,
// golang.org/x/sys/unix, golang.org/x/text and BLAKE3. Never fs, folder,
// go-fuse or fsnotify (internal/layers checks it).
package sync
