// Package fs serves the meshfs folder through FUSE (hanwen/go-fuse/v2,
// imported as fusefs).
//
// # The tree
//
//	MOUNTPOINT/
//	  outbox/   loopback of Root/outbox, read-write; a regular file is reported
//	            to the Syncer when its last writable handle is released, a
//	            symlink or folder when made, anything when renamed in
//	            (Syncer.OutboxClosed lists every case)
//	  sent/     loopback of Root/sent: read, unlink, rmdir, rename within
//	  inbox/    loopback of Root/inbox: read, unlink, rmdir, rename within;
//	            names starting with ".meshfs" at its top are invisible
//	  dm/       synthetic: one file per Syncer.Conversations entry (every
//	            other member), asked anew at each listing and lookup; no
//	            other change is allowed (EPERM)
//	    bob     like chat, for a private conversation: reading gives
//	            Conversation.Log, each written line is handed to
//	            Syncer.SayTo("bob", line)
//	  to/       synthetic: one folder per Syncer.Conversations entry, the
//	            same names as dm/, asked anew at each listing and lookup;
//	            nothing else can be made or changed in it (EPERM)
//	    bob/    loopback of Root/to/bob (made at its first lookup), with
//	            outbox/'s rules: what is put there goes to bob only, and is
//	            reported to Syncer.ToClosed("bob", rel) and ToRemoved; a
//	            rename to or from outbox/ or another member's folder is
//	            EXDEV
//	  chat      synthetic: reading gives Config.ChatLog, each written line is
//	            handed to Syncer.Say
//	  peers     synthetic: a per-open snapshot of Syncer.PeersTable
//
// Each loopback subtree has its own fusefs.LoopbackRoot and a wrapper node
// type (outboxNode, keepNode) that embeds *fusefs.LoopbackNode and wraps its
// children through NodeWrapChilder, so a whole subtree shares one policy.
// outbox/ and each member's folder under to/ are one implementation: an
// outbox "box" (type outbox) named by the member, "" for outbox/, which
// alone decides which Syncer calls its reports go to.
// chat and the files of dm/ are one node type, chatNode, that differs only
// in the log it serves and the call its lines go to.
//
// # What it owns and starts
//
// Mount starts go-fuse's serve loop (owned by the returned Server and
// stopped by Server.Unmount; Server.Wait waits for it) and one goroutine of
// its own, the invalidater (invalidate.go), also owned by the Server: it is
// stopped and waited for by Unmount, or by Wait when the mount ended
// without Unmount. FUSE callbacks call the Syncer, whose methods record or
// enqueue and return: a callback never waits on the network. The one wait
// is Say's and SayTo's, for the local disk: a write to chat or to a file
// of dm/ returns once its line is durable.
//
// # Kernel caching and Changed
//
// The kernel caches the loopback subtrees' entries and attributes for a
// second (loopbackTimeout), never negative entries, no attributes of chat,
// peers and the files of dm/, and the entries of dm/ and to/ for a tenth of
// a second (dmEntryTimeout), so that a member who left disappears from
// them without a notification (docs/fs-caching.md). The sync engine changes the backing tree
// behind the kernel's back, so it reports each change with
// Server.Changed(rel), rel relative to Config.Root ("inbox/alice/r.pdf").
// Changed only adds rel to a bounded set of pending paths, folding it into
// its subtree's top when the set is full, and wakes the invalidater, which
// compares the nodes go-fuse knows along rel with the backing tree and
// calls Inode.NotifyDelete, NotifyEntry or NotifyContent. Notifications
// take kernel locks that a FUSE operation in progress may hold, so they
// are never sent from a FUSE callback or under a lock of this package.
//
// # Imports
//
// fs must not import meshfs/mesh or meshfs/sync (deps_test.go checks it);
// it declares the Syncer interface it needs instead.
package fs
