//go:build linux

package fs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// outbox is the state shared by every node of one outbox subtree: which
// open handles may write, and so when a file is complete. One type serves
// outbox/ and each member's folder to/<name>/ alike; they differ only in
// the Syncer calls they report to (see closed, gone, delivery and
// unsentReason).
type outbox struct {
	// immutable after newOutbox
	root   *fusefs.LoopbackRoot
	member string // "" for outbox/, the member's Conversation.Name for to/<member>/
	syncer Syncer
	log    *slog.Logger

	mu      sync.Mutex
	handles map[fusefs.FileHandle]uint64 // guarded by mu: writable handle -> inode number
	writers map[uint64]int               // guarded by mu: inode number -> writable handles open
	// names is guarded by mu: inode number of a file open for writing ->
	// the paths (relative to the subtree) it was created, opened, linked
	// or renamed as meanwhile, which its last release reports (see
	// outbox_writers.go).
	names map[uint64]map[string]bool
}

// newOutbox returns the top node of an outbox subtree backed by dir, its
// inode numbers salted with salt: outbox/ when member is "", else
// to/<member>/.
func newOutbox(dir string, salt uint64, member string, syncer Syncer, log *slog.Logger) (*outboxNode, error) {
	root, err := newLoopbackRoot(dir, salt)
	if err != nil {
		return nil, err
	}
	box := &outbox{
		root:    root,
		member:  member,
		syncer:  syncer,
		log:     log,
		handles: make(map[fusefs.FileHandle]uint64),
		writers: make(map[uint64]int),
		names:   make(map[uint64]map[string]bool),
	}
	top := &outboxNode{LoopbackNode: &fusefs.LoopbackNode{RootData: root}, box: box}
	root.RootNode = top
	return top, nil
}

// closed reports rel, relative to the subtree, as complete: to
// Syncer.OutboxClosed for outbox/, to Syncer.ToClosed for a member's
// folder.
func (b *outbox) closed(rel string) {
	if b.member == "" {
		b.syncer.OutboxClosed(rel)
		return
	}
	b.syncer.ToClosed(b.member, rel)
}

// gone reports rel as no longer in the subtree (Syncer.OutboxRemoved or
// ToRemoved).
func (b *outbox) gone(rel string) {
	if b.member == "" {
		b.syncer.OutboxRemoved(rel)
		return
	}
	b.syncer.ToRemoved(b.member, rel)
}

// delivery returns the delivery state of file rel (Syncer.Delivery or
// ToDelivery).
func (b *outbox) delivery(rel string) (map[string]string, bool) {
	if b.member == "" {
		return b.syncer.Delivery(rel)
	}
	return b.syncer.ToDelivery(b.member, rel)
}

// unsentReason says why file rel is not sent (Syncer.UnsentReason or
// ToUnsentReason).
func (b *outbox) unsentReason(rel string) string {
	if b.member == "" {
		return b.syncer.UnsentReason(rel)
	}
	return b.syncer.ToUnsentReason(b.member, rel)
}

// outboxNode is a loopback node of outbox/ or of a member's folder
// to/<name>/ that tells the Syncer when files are complete or removed, and
// advertises 1 MiB blocks.
type outboxNode struct {
	*fusefs.LoopbackNode
	box *outbox
}

var (
	_ fusefs.NodeWrapChilder   = (*outboxNode)(nil)
	_ fusefs.NodeLookuper      = (*outboxNode)(nil)
	_ fusefs.NodeGetattrer     = (*outboxNode)(nil)
	_ fusefs.NodeSetattrer     = (*outboxNode)(nil)
	_ fusefs.NodeMkdirer       = (*outboxNode)(nil)
	_ fusefs.NodeSymlinker     = (*outboxNode)(nil)
	_ fusefs.NodeCreater       = (*outboxNode)(nil)
	_ fusefs.NodeOpener        = (*outboxNode)(nil)
	_ fusefs.NodeReleaser      = (*outboxNode)(nil)
	_ fusefs.NodeUnlinker      = (*outboxNode)(nil)
	_ fusefs.NodeRmdirer       = (*outboxNode)(nil)
	_ fusefs.NodeRenamer       = (*outboxNode)(nil)
	_ fusefs.NodeLinker        = (*outboxNode)(nil)
	_ fusefs.NodeGetxattrer    = (*outboxNode)(nil)
	_ fusefs.NodeListxattrer   = (*outboxNode)(nil)
	_ fusefs.NodeSetxattrer    = (*outboxNode)(nil)
	_ fusefs.NodeRemovexattrer = (*outboxNode)(nil)
)

// WrapChild gives every node of the subtree the outbox behaviour.
func (n *outboxNode) WrapChild(ctx context.Context, ops fusefs.InodeEmbedder) fusefs.InodeEmbedder {
	return &outboxNode{LoopbackNode: ops.(*fusefs.LoopbackNode), box: n.box}
}

// childRel returns the outbox path of the entry name in folder n.
func (n *outboxNode) childRel(name string) (string, bool) {
	rel, ok := subtreeRel(n.LoopbackNode)
	return path.Join(rel, name), ok
}

func (n *outboxNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno == 0 {
		setBlksize(&out.Attr)
	}
	return ch, errno
}

func (n *outboxNode) Getattr(ctx context.Context, f fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	errno := n.LoopbackNode.Getattr(ctx, f, out)
	loopbackAttr(n.EmbeddedInode(), &out.Attr)
	return errno
}

// Setattr also reports a file nobody has open for writing whose size, mode
// or mtime it changed: each makes a new version for the Syncer, which
// drops a file that changed while it read it and waits for the next
// report. (git clone copies a loose object with close, then utime; the
// kernel's RELEASE does not wait, so the utime can land while the Syncer
// hashes.) A file open for writing is reported at its last release.
func (n *outboxNode) Setattr(ctx context.Context, f fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	errno := n.LoopbackNode.Setattr(ctx, f, in, out)
	if errno != 0 {
		return errno
	}
	loopbackAttr(n.EmbeddedInode(), &out.Attr)
	if newVersion(in) && isRegular(out.Mode) {
		if rel, ok := subtreeRel(n.LoopbackNode); ok {
			n.box.complete(n.StableAttr().Ino, rel)
		}
	}
	return 0
}

// newVersion reports whether a SETATTR changes what the Syncer sends or
// how it tells versions apart: the size, the mode or the mtime.
func newVersion(in *fuse.SetAttrIn) bool {
	_, size := in.GetSize()
	_, mode := in.GetMode()
	_, mtime := in.GetMTime()
	return size || mode || mtime
}

// revive recreates n's backing folder when it vanished under a cached
// folder: sync removes an outbox folder once everything in it has been
// delivered, and a writer that still holds the folder's dentry would
// otherwise get ENOENT for a folder it can see. A member's folder
// to/<name>/ is revived too (its lookup makes it as well); outbox/ itself
// is not. It reports whether the caller should retry.
func (n *outboxNode) revive(errno syscall.Errno) bool {
	rel, ok := subtreeRel(n.LoopbackNode)
	if errno != syscall.ENOENT || !ok || (rel == "" && n.box.member == "") {
		return false
	}
	dir := filepath.Join(n.RootData.Path, filepath.FromSlash(rel))
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		return false
	}
	return os.MkdirAll(dir, 0o755) == nil
}

// Mkdir reports the new folder: the Syncer sends a folder that stays
// empty as one, and walks it itself.
func (n *outboxNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return n.make(name, func() (*fusefs.Inode, syscall.Errno) { return n.LoopbackNode.Mkdir(ctx, name, mode, out) })
}

// Symlink reports the new symbolic link: it is complete once made.
func (n *outboxNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return n.make(name, func() (*fusefs.Inode, syscall.Errno) { return n.LoopbackNode.Symlink(ctx, target, name, out) })
}

// make runs op, which makes the entry name in n, once more if n's folder
// had vanished (revive), and reports the entry once made.
func (n *outboxNode) make(name string, op func() (*fusefs.Inode, syscall.Errno)) (*fusefs.Inode, syscall.Errno) {
	ch, errno := op()
	if n.revive(errno) {
		ch, errno = op()
	}
	if errno != 0 {
		return nil, errno
	}
	n.reportChild(name)
	return ch, 0
}

// reportChild reports the entry name of folder n as complete.
func (n *outboxNode) reportChild(name string) {
	if rel, ok := n.childRel(name); ok {
		n.box.closed(rel)
	}
}

func (n *outboxNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if n.revive(errno) {
		ch, fh, fuseFlags, errno = n.LoopbackNode.Create(ctx, name, flags, mode, out)
	}
	if errno != 0 {
		return nil, nil, 0, errno
	}
	rel, ok := n.childRel(name)
	n.box.opened(ch.StableAttr().Ino, fh, rel, ok)
	setBlksize(&out.Attr)
	return ch, fh, fuseFlags, 0
}

// writes reports whether open flags let the handle change the file.
func writes(flags uint32) bool {
	return flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
}

func (n *outboxNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	if errno == 0 && writes(flags) {
		rel, ok := subtreeRel(n.LoopbackNode)
		n.box.opened(n.StableAttr().Ino, fh, rel, ok)
	}
	return fh, fuseFlags, errno
}

// Release clears the unfinished-writer mark if this was the file's last
// writable handle, closes the backing file, so the Syncer reads a closed,
// complete file, and then reports every name the file still has: the one
// go-fuse knows and those it got while open (hard links, renames). The
// kernel ignores Release's result.
func (n *outboxNode) Release(ctx context.Context, f fusefs.FileHandle) syscall.Errno {
	ino, names, last := n.box.released(f)
	if r, ok := f.(fusefs.FileReleaser); ok {
		r.Release(ctx)
	}
	if !last {
		return 0
	}
	if rel, ok := subtreeRel(n.LoopbackNode); ok {
		names = append(names, rel)
	}
	n.box.reportNames(ino, names)
	return 0
}

func (n *outboxNode) Unlink(ctx context.Context, name string) syscall.Errno {
	errno := n.LoopbackNode.Unlink(ctx, name)
	if errno == 0 {
		n.removed(name)
	}
	return errno
}

func (n *outboxNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	errno := n.LoopbackNode.Rmdir(ctx, name)
	if errno == 0 {
		n.removed(name)
	}
	return errno
}

func (n *outboxNode) removed(name string) {
	if rel, ok := n.childRel(name); ok {
		n.box.removed(rel)
	}
}

// Rename reports the old name as removed and the new one as complete
// (editors, rsync and `mv tmp final` publish files this way). An exchange
// reports both names as complete. Renames to another subtree fail with
// EXDEV, between outbox/ and to/<name>/ or two members' folders too, so the
// source and the target are always in the same box.
func (n *outboxNode) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*outboxNode)
	if !ok || np.box != n.box {
		return syscall.EXDEV
	}
	if errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags); errno != 0 {
		return errno
	}
	oldRel, ok1 := n.childRel(name)
	newRel, ok2 := np.childRel(newName)
	if !ok1 || !ok2 {
		return 0
	}
	if flags&unix.RENAME_EXCHANGE != 0 {
		n.box.changed(newRel)
		n.box.changed(oldRel)
		return 0
	}
	n.box.removed(oldRel)
	n.box.changed(newRel)
	return 0
}

// Link reports the new name of a hard-linked file, or keeps it for the
// last release when the file is open for writing.
func (n *outboxNode) Link(ctx context.Context, target fusefs.InodeEmbedder, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Link(ctx, target, name, out)
	if errno != 0 {
		return nil, errno
	}
	setBlksize(&out.Attr)
	if rel, ok := n.childRel(name); ok {
		n.box.changed(rel)
	}
	return ch, 0
}
