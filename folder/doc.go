// Package folder is meshfs's second frontend: it keeps the meshfs tree as an
// ordinary folder, for machines without FUSE (`meshfs mount --no-fuse`).
// It watches the folder with fsnotify and tells the sync engine what the
// user did through the small Syncer interface it declares; it never waits
// on the network.
//
//   - outbox/: a file is reported closed once no process holds it open for
//     writing, however long a writer pauses: on Linux a /proc scan decides
//     when the file goes quiet and again at each inotify close-write (its
//     own inotify instance: fsnotify does not export close-write), never
//     on a timer while nothing is held; and again when a chmod
//     or utime changes it; symbolic links (never followed) and new folders
//     are reported too; removals are reported.
//   - chat: lines the user appends (or writes over the file) are sent, and
//     the file is then rewritten as the room's log.
//   - peers: rendered every PeersRefresh and rewritten only when the
//     table changed.
//
// # Goroutines
//
// Tree.Run starts the close watcher's reader, the event reader (fsnotify
// and closes; it also watches new outbox subfolders), a debouncer each for outbox paths and for chat, the outbox
// loop, the chat loop (sole writer of Dir/chat) and the peers loop (sole
// writer of Dir/peers); all of them stop before Run returns.
//
// # Imports
//
// fsnotify, golang.org/x/sys/unix, internal/atomicfile and the standard library; no other meshfs
// package (internal/layers checks it).
package folder
