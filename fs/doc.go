// Package fs serves the meshfs folder through FUSE (hanwen/go-fuse/v2,
// imported as fusefs).
//
// # The tree
//
//	MOUNTPOINT/
//	  outbox/   loopback of Root/outbox, read-write; a regular file is reported
//	            to the Syncer when its last writable handle is released
//	  sent/     loopback of Root/sent: read, unlink, rmdir, rename within
//	  inbox/    loopback of Root/inbox: read, unlink, rmdir, rename within;
//	            names starting with ".meshfs" at its top are invisible
//	  chat      synthetic: reading gives Config.ChatLog, each written line is
//	            handed to Syncer.Say
//	  peers     synthetic: a per-open snapshot of Syncer.PeersTable
//
// Each loopback subtree has its own fusefs.LoopbackRoot and a wrapper node
// type (outboxNode, keepNode) that embeds *fusefs.LoopbackNode and wraps its
// children through NodeWrapChilder, so a whole subtree shares one policy.
//
// # What it owns and starts
//
// Mount starts go-fuse's serve loop (owned by the returned Server and
// stopped by Server.Unmount; Server.Wait waits for it). The package starts
// no goroutine of its own. FUSE callbacks call the Syncer, whose methods
// must only enqueue: a callback never waits on the network.
//
// # Imports
//
// fs must not import meshfs/mesh or meshfs/sync (deps_test.go checks it);
// it declares the Syncer interface it needs instead.
package fs
