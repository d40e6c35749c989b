//go:build linux

package fs

import (
	"fmt"
	"math/bits"
	"path"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// blockSize is the st_blksize reported for loopback files: coreutils cp
// sizes its buffer as max(128 KiB, st_blksize), so 1 MiB gives 1 MiB
// writes.
const blockSize = 1 << 20

// Salts mixed into the inode numbers of each loopback subtree. sync moves
// files between outbox/ and sent/ by renaming them in the backing tree, so
// one backing inode can be seen under two subtrees. go-fuse merges nodes with
// equal inode numbers into one Inode (hard-link semantics), which would give
// a sent/ file the outbox/ node, its policy and its backing path. A distinct
// salt per subtree keeps their nodes apart.
// Each member's folder to/<name>/ gets a salt of its own, saltToFirst
// and up in the order the folders are first looked up: sync may move a
// file between them and sent/ as it does for outbox/.
const (
	saltOutbox  = 1
	saltSent    = 2
	saltInbox   = 3
	saltToFirst = 4
)

// newLoopbackRoot describes the backing folder dir for one subtree.
// go-fuse computes a node's inode number as
// (rot32(st.Dev) ^ rot32(root.Dev)) ^ st.Ino, so setting root.Dev to the
// real device xor salt yields rot32(salt) ^ st.Ino: (salt << 32) ^ st.Ino.
func newLoopbackRoot(dir string, salt uint64) (*fusefs.LoopbackRoot, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", dir, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return nil, fmt.Errorf("backing %s: %w", dir, ErrNotFolder)
	}
	return &fusefs.LoopbackRoot{Path: dir, Dev: uint64(st.Dev) ^ salt}, nil
}

// backingIno returns the inode number go-fuse gives the backing file st in
// the subtree described by root: the formula newLoopbackRoot relies on.
func backingIno(root *fusefs.LoopbackRoot, st *syscall.Stat_t) uint64 {
	return bits.RotateLeft64(uint64(st.Dev), 32) ^ bits.RotateLeft64(root.Dev, 32) ^ st.Ino
}

// loopbackOf returns the loopback node behind n, or nil when n is not in a
// loopback subtree.
func loopbackOf(n *fusefs.Inode) *fusefs.LoopbackNode {
	switch ops := n.Operations().(type) {
	case *outboxNode:
		return ops.LoopbackNode
	case *keepNode:
		return ops.LoopbackNode
	}
	return nil
}

// isTop reports whether n is the top folder of its loopback subtree.
func isTop(n *fusefs.LoopbackNode) bool {
	return n.EmbeddedInode() == n.RootData.RootNode.EmbeddedInode()
}

// relPath returns n's '/'-separated path below root, and false when n is no
// longer connected to root (unlinked, or moved out of the subtree).
func relPath(n, root *fusefs.Inode) (string, bool) {
	var parts []string
	for p := n; p != root; {
		name, parent := p.Parent()
		if parent == nil {
			return "", false
		}
		parts = append(parts, name)
		p = parent
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return path.Join(parts...), true
}

// subtreeRel returns the path of the loopback node n relative to the top
// of its subtree ("" for the top itself).
func subtreeRel(n *fusefs.LoopbackNode) (string, bool) {
	return relPath(n.EmbeddedInode(), n.RootData.RootNode.EmbeddedInode())
}

// loopbackAttr finishes the attributes of loopback node n: its inode number
// is the salted one go-fuse knows it by (go-fuse would replace the backing
// number anyway, with a warning per GETATTR), and regular files advertise
// blockSize.
func loopbackAttr(n *fusefs.Inode, a *fuse.Attr) {
	a.Ino = n.StableAttr().Ino
	setBlksize(a)
}

// setBlksize advertises blockSize for regular files.
func setBlksize(a *fuse.Attr) {
	if a.Mode&syscall.S_IFMT == syscall.S_IFREG {
		a.Blksize = blockSize
	}
}

// isRegular reports whether mode describes a regular file.
func isRegular(mode uint32) bool {
	return mode&syscall.S_IFMT == syscall.S_IFREG
}
