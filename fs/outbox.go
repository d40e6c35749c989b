//go:build linux

package fs

import (
	"context"
	"errors"
	iofs "io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// outbox is the state shared by every node of the outbox/ subtree: which
// open handles may write, and so when a file is complete.
type outbox struct {
	// immutable after newOutbox
	root   *fusefs.LoopbackRoot
	syncer Syncer
	log    *slog.Logger

	mu      sync.Mutex
	handles map[fusefs.FileHandle]uint64 // guarded by mu: writable handle -> inode number
	writers map[uint64]int               // guarded by mu: inode number -> writable handles open
}

// newOutbox returns the top node of the outbox/ subtree backed by dir.
func newOutbox(dir string, syncer Syncer, log *slog.Logger) (*outboxNode, error) {
	root, err := newLoopbackRoot(dir, saltOutbox)
	if err != nil {
		return nil, err
	}
	box := &outbox{
		root:    root,
		syncer:  syncer,
		log:     log,
		handles: make(map[fusefs.FileHandle]uint64),
		writers: make(map[uint64]int),
	}
	top := &outboxNode{LoopbackNode: &fusefs.LoopbackNode{RootData: root}, box: box}
	root.RootNode = top
	return top, nil
}

// opened records fh, a handle that may write the file with inode number ino.
func (b *outbox) opened(ino uint64, fh fusefs.FileHandle) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handles[fh] = ino
	b.writers[ino]++
}

// released forgets fh and reports whether it was the last writable handle
// of its file.
func (b *outbox) released(fh fusefs.FileHandle) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	ino, ok := b.handles[fh]
	if !ok {
		return false
	}
	delete(b.handles, fh)
	b.writers[ino]--
	if b.writers[ino] > 0 {
		return false
	}
	delete(b.writers, ino)
	return true
}

// writing reports whether the file node n is open for writing.
func (b *outbox) writing(n *fusefs.Inode) bool {
	if n == nil {
		return false // the kernel never looked it up, so nobody has it open
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.writers[n.StableAttr().Ino] > 0
}

// changed reports rel (whose go-fuse node is n, or nil when unknown) as
// complete after a rename or link: a regular file that nobody is writing
// is reported; a folder is walked in the backing tree and each such file in
// it is reported. Files still open for writing are reported on release.
func (b *outbox) changed(n *fusefs.Inode, rel string) {
	full := filepath.Join(b.root.Path, filepath.FromSlash(rel))
	var st syscall.Stat_t
	if err := syscall.Lstat(full, &st); err != nil {
		b.log.Warn("stat renamed outbox entry", "path", rel, "err", err)
		return
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		if !b.writing(n) {
			b.syncer.OutboxClosed(rel)
		}
	case syscall.S_IFDIR:
		b.walk(n, full, rel)
	}
}

// walk reports every regular file below the backing folder full (outbox
// path rel, go-fuse node dir or nil) that nobody is writing. It only reads
// the backing tree, never the mount.
func (b *outbox) walk(dir *fusefs.Inode, full, rel string) {
	err := filepath.WalkDir(full, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			b.log.Warn("walk renamed outbox folder", "path", rel, "err", err)
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		sub, err := filepath.Rel(full, p)
		if err != nil {
			return nil
		}
		sub = filepath.ToSlash(sub)
		if !b.writing(descendant(dir, sub)) {
			b.syncer.OutboxClosed(path.Join(rel, sub))
		}
		return nil
	})
	if err != nil {
		b.log.Warn("walk renamed outbox folder", "path", rel, "err", err)
	}
}

// descendant finds the known go-fuse node at rel below dir, or nil.
func descendant(dir *fusefs.Inode, rel string) *fusefs.Inode {
	n := dir
	for part := range strings.SplitSeq(rel, "/") {
		if n == nil {
			return nil
		}
		n = n.GetChild(part)
	}
	return n
}

// outboxNode is a loopback node of outbox/ that tells the Syncer when files
// are complete or removed, and advertises 1 MiB blocks.
type outboxNode struct {
	*fusefs.LoopbackNode
	box *outbox
}

var (
	_ fusefs.NodeWrapChilder   = (*outboxNode)(nil)
	_ fusefs.NodeLookuper      = (*outboxNode)(nil)
	_ fusefs.NodeGetattrer     = (*outboxNode)(nil)
	_ fusefs.NodeSetattrer     = (*outboxNode)(nil)
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
	if newVersion(in) && isRegular(out.Mode) && !n.box.writing(n.EmbeddedInode()) {
		if rel, ok := subtreeRel(n.LoopbackNode); ok {
			n.box.syncer.OutboxClosed(rel)
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
// otherwise get ENOENT for a folder it can see. It reports whether the
// caller should retry.
func (n *outboxNode) revive(errno syscall.Errno) bool {
	rel, ok := subtreeRel(n.LoopbackNode)
	if errno != syscall.ENOENT || !ok || rel == "" {
		return false
	}
	dir := filepath.Join(n.RootData.Path, filepath.FromSlash(rel))
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		return false
	}
	return os.MkdirAll(dir, 0o755) == nil
}

func (n *outboxNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	if n.revive(errno) {
		ch, errno = n.LoopbackNode.Mkdir(ctx, name, mode, out)
	}
	return ch, errno
}

func (n *outboxNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if n.revive(errno) {
		ch, fh, fuseFlags, errno = n.LoopbackNode.Create(ctx, name, flags, mode, out)
	}
	if errno != 0 {
		return nil, nil, 0, errno
	}
	n.box.opened(ch.StableAttr().Ino, fh)
	if rel, ok := n.childRel(name); ok {
		n.box.markIncomplete(rel)
	}
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
		n.box.opened(n.StableAttr().Ino, fh)
		if rel, ok := subtreeRel(n.LoopbackNode); ok {
			n.box.markIncomplete(rel)
		}
	}
	return fh, fuseFlags, errno
}

// Release closes the backing file first, so the Syncer reads a closed,
// complete file; then, if this was the file's last writable handle, it
// clears the unfinished-writer mark and reports the file. The kernel
// ignores Release's result.
func (n *outboxNode) Release(ctx context.Context, f fusefs.FileHandle) syscall.Errno {
	if r, ok := f.(fusefs.FileReleaser); ok {
		r.Release(ctx)
	}
	if !n.box.released(f) {
		return 0
	}
	rel, ok := subtreeRel(n.LoopbackNode)
	if !ok {
		return 0 // unlinked while open: nothing left to send
	}
	n.box.clearIncomplete(rel)
	n.box.syncer.OutboxClosed(rel)
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
		n.box.syncer.OutboxRemoved(rel)
	}
}

// Rename reports the old name as removed and the new one as complete
// (editors, rsync and `mv tmp final` publish files this way). An exchange
// reports both names as complete. Renames across subtrees fail with EXDEV
// in the loopback, so the source is always in outbox/.
func (n *outboxNode) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*outboxNode)
	if !ok {
		return syscall.EXDEV
	}
	// Look the nodes up before renaming: go-fuse moves them in its tree
	// only after Rename returns.
	src := n.GetChild(name)
	dst := np.GetChild(newName)
	if errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags); errno != 0 {
		return errno
	}
	oldRel, ok1 := n.childRel(name)
	newRel, ok2 := np.childRel(newName)
	if !ok1 || !ok2 {
		return 0
	}
	if flags&unix.RENAME_EXCHANGE != 0 {
		n.box.changed(src, newRel)
		n.box.changed(dst, oldRel)
		return 0
	}
	n.box.syncer.OutboxRemoved(oldRel)
	n.box.changed(src, newRel)
	return 0
}

// Link reports the new name of a hard-linked file.
func (n *outboxNode) Link(ctx context.Context, target fusefs.InodeEmbedder, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Link(ctx, target, name, out)
	if errno != 0 {
		return nil, errno
	}
	setBlksize(&out.Attr)
	if rel, ok := n.childRel(name); ok && isRegular(out.Attr.Mode) && !n.box.writing(ch) {
		n.box.syncer.OutboxClosed(rel)
	}
	return ch, 0
}
