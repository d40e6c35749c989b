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
//   - to/: one folder per other member (named as dm/ names them, made
//     when the peers table changes), each a box watched and reported
//     exactly like outbox/, through the same code, but to ToClosed and
//     ToRemoved with the member's name: what is put in to/bob/ goes to
//     bob only. Files there at start are left to the engine's rescan, as
//     in outbox/. A member's folder removed or moved away is made again
//     (what was reported in it is reported removed), and one made or
//     replaced while meshfs runs is reported whole; a folder found when
//     its name becomes a member's is not, so files put in a folder that
//     was no member's never go to whoever takes the name. A name under
//     to/ that is no member's (made by the user, or a removed member's
//     folder) is warned about once, and nothing in it is reported,
//     deleted or moved.
//   - chat: lines the user appends (or writes over the file) are sent, and
//     the file is then rewritten as the room's log.
//   - dm/: one file per other member (Syncer.Conversations), a private
//     conversation that works like chat, through the same code: lines
//     the user adds go to SayTo, and the file is rewritten as that
//     conversation's log. The members are read again when the peers
//     table changes. A removed member's file stays as it is and sends
//     nothing; a file whose name is no member's is warned about once and
//     never sent; nothing under dm/ is deleted: text a member's log would
//     replace that is not new lines after a copy of that log (an earlier
//     conversation, a note to a name that was no member's) is kept aside
//     as name~ and never sent.
//   - peers: rendered every PeersRefresh while it changes, less often
//     (up to 8 times PeersRefresh) while it does not, and at once when a
//     member connects or leaves; rewritten only when the table changed.
//
// # Goroutines
//
// Tree.Run starts the close watcher's reader, the event reader (fsnotify
// and closes; it also watches new subfolders of the boxes, outbox/ and
// to/*/), a debouncer each for the boxes' paths and for chat and dm/,
// the box loop (reports for every box; it makes and watches the members'
// folders under to/), the chat loop (sole writer of Dir/chat and
// Dir/dm/*; it watches the dm logs' folders) and the peers loop (sole
// writer of Dir/peers; it tells the chat loop and the box loop when the
// table changed); all of them stop before Run returns. No timer runs
// while nothing happens: the box loop checks held files on a timer only
// while one is held, the chat loop polls only while a writer holds a
// file no event covers, and both learn of members from the peers loop's
// refresh instead of a timer of their own. The members' folders use the
// same two inotify instances as the rest of the tree (one watch each per
// folder), none of their own.
//
// # Imports
//
// fsnotify, golang.org/x/sys/unix, internal/atomicfile and the standard library; no other meshfs
// package (internal/layers checks it).
package folder
