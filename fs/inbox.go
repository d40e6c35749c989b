//go:build linux

package fs

import (
	"context"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// hiddenPrefix starts the names sync keeps at the top of inbox/ for itself
// (.meshfs-partials/): they never appear through the mount.
const hiddenPrefix = ".meshfs"

// newInbox returns the top node of inbox/, backed by dir: a keep subtree
// that hides sync's own names at its top.
func newInbox(dir string) (*keepNode, error) {
	return newKeep(dir, saltInbox, hiddenPrefix)
}

// hidingDir is a directory handle that skips hidden entries. It keeps the
// backing stream's offsets, so seekdir to a visible entry still works.
type hidingDir struct {
	dir   fusefs.FileHandle
	hides func(name string) bool
}

var (
	_ fusefs.FileReaddirenter = (*hidingDir)(nil)
	_ fusefs.FileSeekdirer    = (*hidingDir)(nil)
	_ fusefs.FileReleasedirer = (*hidingDir)(nil)
	_ fusefs.FileFsyncdirer   = (*hidingDir)(nil)
)

func (d *hidingDir) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	r, ok := d.dir.(fusefs.FileReaddirenter)
	if !ok {
		return nil, syscall.ENOTSUP
	}
	for {
		e, errno := r.Readdirent(ctx)
		if e == nil || errno != 0 || !d.hides(e.Name) {
			return e, errno
		}
	}
}

func (d *hidingDir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if s, ok := d.dir.(fusefs.FileSeekdirer); ok {
		return s.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (d *hidingDir) Releasedir(ctx context.Context, flags uint32) {
	if r, ok := d.dir.(fusefs.FileReleasedirer); ok {
		r.Releasedir(ctx, flags)
	}
}

func (d *hidingDir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if s, ok := d.dir.(fusefs.FileFsyncdirer); ok {
		return s.Fsyncdir(ctx, flags)
	}
	return 0
}

// filterStream reads ds to the end and returns the visible entries. Only
// used for the small top folder of inbox/.
func filterStream(ds fusefs.DirStream, hides func(string) bool) (fusefs.DirStream, syscall.Errno) {
	defer ds.Close()
	var list []fuse.DirEntry
	for ds.HasNext() {
		e, errno := ds.Next()
		if errno != 0 {
			return nil, errno
		}
		if !hides(e.Name) {
			list = append(list, e)
		}
	}
	return fusefs.NewListDirStream(list), 0
}
