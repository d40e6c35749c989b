// Package folder is meshfs's second frontend: it keeps the meshfs tree as an
// ordinary folder, for machines without FUSE (`meshfs mount --no-fuse`).
// It watches the folder with fsnotify and tells the sync engine what the
// user did through the small Syncer interface it declares; it never waits
// on the network.
//
//   - outbox/: a file is reported closed once no process holds it open for
//     writing (a /proc scan on Linux: fsnotify does not export inotify's
//     close-write), however long a writer pauses, and again when a chmod
//     or utime changes it; symbolic links (never followed) and new folders
//     are reported too; removals are reported.
//   - chat: lines the user appends (or writes over the file) are sent, and
//     the file is then rewritten as the room's log.
//   - peers: rewritten whenever the rendered table changes.
//
// # Goroutines
//
// Tree.Run starts the fsnotify reader (which also watches new outbox
// subfolders), a debouncer each for outbox paths and for chat, the outbox
// loop, the chat loop (sole writer of Dir/chat) and the peers loop (sole
// writer of Dir/peers); all of them stop before Run returns.
//
// # Imports
//
// fsnotify, internal/atomicfile and the standard library; no other meshfs
// package (internal/layers checks it).
package folder
