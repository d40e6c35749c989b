//go:build linux

package fs

import (
	"bytes"
	"context"
	"os"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// peersNode is the synthetic, read-only peers file. Each open takes a
// snapshot of Syncer.PeersTable, so one reader sees one consistent table.
type peersNode struct {
	fusefs.Inode
	syncer Syncer
}

var (
	_ fusefs.NodeGetattrer  = (*peersNode)(nil)
	_ fusefs.NodeSetattrer  = (*peersNode)(nil)
	_ fusefs.NodeOpener     = (*peersNode)(nil)
	_ fusefs.NodeSetxattrer = (*peersNode)(nil)
)

// Getattr reports size 0, like /proc files: the table is generated per
// open and read with direct I/O until EOF.
func (n *peersNode) Getattr(ctx context.Context, f fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.SetTimeout(uncached)
	out.Mode = syscall.S_IFREG | 0o444
	out.Nlink = 1
	out.Uid, out.Gid = uint32(os.Getuid()), uint32(os.Getgid())
	now := time.Now()
	out.SetTimes(nil, &now, &now)
	return 0
}

// Setattr refuses every change, O_TRUNC included.
func (n *peersNode) Setattr(ctx context.Context, f fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return syscall.EACCES
}

func (n *peersNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.ENOTSUP
}

// Open refuses writers even for root, whom the 0444 mode does not stop.
func (n *peersNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	if writes(flags) {
		return nil, 0, syscall.EACCES
	}
	return &peersHandle{data: bytes.Clone(n.syncer.PeersTable())}, fuse.FOPEN_DIRECT_IO, 0
}

// peersHandle holds one snapshot of the table.
type peersHandle struct {
	data []byte // immutable
}

var _ fusefs.FileReader = (*peersHandle)(nil)

func (h *peersHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(h.data)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(h.data)))
	return fuse.ReadResultData(h.data[off:end]), 0
}
