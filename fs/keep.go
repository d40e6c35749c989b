//go:build linux

package fs

import (
	"context"
	"strings"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// keepNode is a loopback node of a subtree the user may read, rename
// within, and delete from, but never add to or modify: inbox/ (files only
// sync puts there, after verifying them) and sent/. Renames to another
// subtree fail with EXDEV, so `mv` falls back to copy and delete.
type keepNode struct {
	*fusefs.LoopbackNode
	// hidePrefix, when not empty, hides the names starting with it at the top
	// of the subtree (sync's partial files in inbox/).
	hidePrefix string
}

var (
	_ fusefs.NodeWrapChilder    = (*keepNode)(nil)
	_ fusefs.NodeLookuper       = (*keepNode)(nil)
	_ fusefs.NodeGetattrer      = (*keepNode)(nil)
	_ fusefs.NodeSetattrer      = (*keepNode)(nil)
	_ fusefs.NodeOpener         = (*keepNode)(nil)
	_ fusefs.NodeOpendirHandler = (*keepNode)(nil)
	_ fusefs.NodeReaddirer      = (*keepNode)(nil)
	_ fusefs.NodeCreater        = (*keepNode)(nil)
	_ fusefs.NodeMkdirer        = (*keepNode)(nil)
	_ fusefs.NodeMknoder        = (*keepNode)(nil)
	_ fusefs.NodeSymlinker      = (*keepNode)(nil)
	_ fusefs.NodeLinker         = (*keepNode)(nil)
	_ fusefs.NodeUnlinker       = (*keepNode)(nil)
	_ fusefs.NodeRmdirer        = (*keepNode)(nil)
	_ fusefs.NodeRenamer        = (*keepNode)(nil)
)

// newKeep returns the top node of a keep subtree backed by dir.
func newKeep(dir string, salt uint64, hidePrefix string) (*keepNode, error) {
	root, err := newLoopbackRoot(dir, salt)
	if err != nil {
		return nil, err
	}
	top := &keepNode{LoopbackNode: &fusefs.LoopbackNode{RootData: root}, hidePrefix: hidePrefix}
	root.RootNode = top
	return top, nil
}

// WrapChild gives every node of the subtree the same policy.
func (n *keepNode) WrapChild(ctx context.Context, ops fusefs.InodeEmbedder) fusefs.InodeEmbedder {
	return &keepNode{LoopbackNode: ops.(*fusefs.LoopbackNode), hidePrefix: n.hidePrefix}
}

// hides reports whether name, an entry of folder n, is invisible.
func (n *keepNode) hides(name string) bool {
	return n.hidePrefix != "" && strings.HasPrefix(name, n.hidePrefix) && isTop(n.LoopbackNode)
}

func (n *keepNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if n.hides(name) {
		return nil, syscall.ENOENT
	}
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno == 0 {
		setBlksize(&out.Attr)
	}
	return ch, errno
}

func (n *keepNode) Getattr(ctx context.Context, f fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	errno := n.LoopbackNode.Getattr(ctx, f, out)
	loopbackAttr(n.EmbeddedInode(), &out.Attr)
	return errno
}

// Setattr allows metadata changes (mode, times, owner) but not a size
// change: the content of a kept file is what was verified or sent.
func (n *keepNode) Setattr(ctx context.Context, f fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok {
		return syscall.EPERM
	}
	errno := n.LoopbackNode.Setattr(ctx, f, in, out)
	loopbackAttr(n.EmbeddedInode(), &out.Attr)
	return errno
}

// Open refuses handles that could change the file.
func (n *keepNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if writes(flags) {
		return nil, 0, syscall.EPERM
	}
	return n.LoopbackNode.Open(ctx, flags)
}

func (n *keepNode) OpendirHandle(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 || n.hidePrefix == "" || !isTop(n.LoopbackNode) {
		return fh, fuseFlags, errno
	}
	return &hidingDir{dir: fh, hides: n.hides}, fuseFlags, 0
}

func (n *keepNode) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	ds, errno := n.LoopbackNode.Readdir(ctx)
	if errno != 0 || n.hidePrefix == "" || !isTop(n.LoopbackNode) {
		return ds, errno
	}
	return filterStream(ds, n.hides)
}

func (n *keepNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, fusefs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EPERM
}

func (n *keepNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (n *keepNode) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (n *keepNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (n *keepNode) Link(ctx context.Context, target fusefs.InodeEmbedder, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	return nil, syscall.EPERM
}

func (n *keepNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if n.hides(name) {
		return syscall.ENOENT
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *keepNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if n.hides(name) {
		return syscall.ENOENT
	}
	return n.LoopbackNode.Rmdir(ctx, name)
}

// Rename works within the subtree; a hidden name can be neither source nor
// target, so the user cannot reach sync's partial files this way.
func (n *keepNode) Rename(ctx context.Context, name string, newParent fusefs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*keepNode)
	if !ok || np.RootData != n.RootData {
		return syscall.EXDEV
	}
	if n.hides(name) {
		return syscall.ENOENT
	}
	if np.hides(newName) {
		return syscall.EPERM
	}
	return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
}
