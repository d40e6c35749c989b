//go:build linux

package fs

import (
	"context"
	"log/slog"
	"os"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dmEntryTimeout is how long the kernel keeps an entry of dm/. Members come
// and go with no call into fs that could invalidate the kernel's cache, so
// the entry must expire by itself: a member removed disappears from path
// lookups within this time (listings are never cached). A member added
// shows at once, since negative entries are never cached either (Mount
// sets no NegativeTimeout). It is shorter than the second the other
// synthetic entries are kept, which would be the upper bound, but long
// enough that one command's burst of lookups (ls -l, open then fstat)
// costs one LOOKUP, and with it one Syncer.Conversations call. The
// members' folders of to/ are kept as long, for the same reason.
const dmEntryTimeout = 100 * time.Millisecond

// dmNode is the dm/ folder: one chatNode per member this node may talk to
// privately. The member set is the Syncer's: every listing and lookup asks
// Syncer.Conversations anew. Nothing else changes the folder: every
// operation that would fails with EPERM, as in the top folder.
type dmNode struct {
	fusefs.Inode
	fixedFolder // its entries are meshfs's: every change is refused

	// immutable after newDM
	syncer  Syncer
	members *memberNames
	errs    *errnos
	mtime   time.Time
}

var (
	_ fusefs.NodeGetattrer = (*dmNode)(nil)
	_ fusefs.NodeLookuper  = (*dmNode)(nil)
	_ fusefs.NodeReaddirer = (*dmNode)(nil)
)

func newDM(syncer Syncer, errs *errnos, log *slog.Logger) *dmNode {
	return &dmNode{syncer: syncer, members: newMemberNames(syncer, log), errs: errs, mtime: time.Now()}
}

func (d *dmNode) Getattr(ctx context.Context, f fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o700
	out.Nlink = 2
	out.Uid, out.Gid = uint32(os.Getuid()), uint32(os.Getgid())
	out.SetTimes(nil, &d.mtime, &d.mtime)
	return 0
}

// Readdir lists the conversations at the time of the call. The kernel
// reads with READDIRPLUS, for which go-fuse then calls Lookup on each name
// listed: a listing of n members asks Syncer.Conversations n+1 times, which
// a small mesh and a memory-only call make cheap.
func (d *dmNode) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	convs := d.conversations()
	entries := make([]fuse.DirEntry, len(convs))
	for i, c := range convs {
		entries[i] = fuse.DirEntry{Name: c.Name, Mode: syscall.S_IFREG}
	}
	return fusefs.NewListDirStream(entries), 0
}

// Lookup finds name among the current conversations. The entry expires
// after dmEntryTimeout, so the kernel asks again soon; the attributes are
// uncached, as chat's.
func (d *dmNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	c, ok := d.members.find(name)
	if !ok {
		return nil, syscall.ENOENT
	}
	n := d.file(ctx, c)
	if errno := n.attr(&out.Attr); errno != 0 {
		return nil, errno
	}
	out.SetEntryTimeout(dmEntryTimeout)
	out.SetAttrTimeout(uncached)
	return n.EmbeddedInode(), 0
}

// file returns the node of conversation c: the one go-fuse already knows
// under c.Name if it serves the same log, so the kernel keeps one inode per
// conversation, or else a new one. A node outlives its member while a
// handle is open; its writes then fail with SayTo's ENOENT.
func (d *dmNode) file(ctx context.Context, c Conversation) *chatNode {
	if ch := d.GetChild(c.Name); ch != nil {
		if n, ok := ch.Operations().(*chatNode); ok && n.log == c.Log {
			return n
		}
	}
	name := c.Name
	say := func(line string) error { return d.syncer.SayTo(name, line) }
	n := newChat("dm/"+name, c.Log, say, d.errs)
	d.NewInode(ctx, n, fusefs.StableAttr{Mode: syscall.S_IFREG})
	return n
}

// conversations returns the current conversations with a good name.
func (d *dmNode) conversations() []Conversation { return d.members.conversations() }

// dm/'s entries are the Syncer's: fixedFolder refuses every change.
var (
	_ fusefs.NodeSetattrer = (*dmNode)(nil)
	_ fusefs.NodeCreater   = (*dmNode)(nil)
	_ fusefs.NodeMkdirer   = (*dmNode)(nil)
	_ fusefs.NodeMknoder   = (*dmNode)(nil)
	_ fusefs.NodeSymlinker = (*dmNode)(nil)
	_ fusefs.NodeLinker    = (*dmNode)(nil)
	_ fusefs.NodeUnlinker  = (*dmNode)(nil)
	_ fusefs.NodeRmdirer   = (*dmNode)(nil)
	_ fusefs.NodeRenamer   = (*dmNode)(nil)
)
