//go:build linux

package fs

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// toNode is the to/ folder: one folder per member this node may send to
// privately, to/<name>/, each an outbox subtree of its own (outboxNode,
// reporting to Syncer.ToClosed and ToRemoved with the member's name) over
// the backing folder Root/to/<name>. The member set is the Syncer's, as in
// dm/: every listing and lookup asks Syncer.Conversations anew, and an
// entry is kept by the kernel for dmEntryTimeout. Nothing else changes the
// folder: every operation that would fails with EPERM, as in the top
// folder.
type toNode struct {
	fusefs.Inode
	fixedFolder // its entries are meshfs's: every change is refused

	// immutable after newTo
	dir     string // the backing folder, Root/to
	syncer  Syncer
	members *memberNames
	errs    *errnos
	log     *slog.Logger
	mtime   time.Time

	mu sync.Mutex
	// boxes is guarded by mu: member name -> the top of its folder, made
	// at the name's first lookup and kept for the mount's life, so a
	// member who leaves and comes back keeps its inode numbers and its
	// writers. A top's Inode is persistent: go-fuse keeps it while the
	// kernel has forgotten it.
	boxes    map[string]*outboxNode
	nextSalt uint64 // guarded by mu: the salt of the next folder made
}

var (
	_ fusefs.NodeGetattrer = (*toNode)(nil)
	_ fusefs.NodeLookuper  = (*toNode)(nil)
	_ fusefs.NodeReaddirer = (*toNode)(nil)
)

// newTo returns the to/ folder over the backing folder dir, which it
// creates if missing.
func newTo(dir string, syncer Syncer, errs *errnos, log *slog.Logger) (*toNode, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &toNode{dir: dir, syncer: syncer, members: newMemberNames(syncer, log), errs: errs, log: log,
		mtime: time.Now(), boxes: make(map[string]*outboxNode), nextSalt: saltToFirst}, nil
}

func (t *toNode) Getattr(ctx context.Context, f fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o700
	out.Nlink = 2
	out.Uid, out.Gid = uint32(os.Getuid()), uint32(os.Getgid())
	out.SetTimes(nil, &t.mtime, &t.mtime)
	return 0
}

// Readdir lists the members at the time of the call, and makes the
// backing folder of each that has none yet. A folder that cannot be made
// is still listed: its lookup then fails with the reason.
func (t *toNode) Readdir(ctx context.Context) (fusefs.DirStream, syscall.Errno) {
	convs := t.members.conversations()
	entries := make([]fuse.DirEntry, len(convs))
	for i, c := range convs {
		entries[i] = fuse.DirEntry{Name: c.Name, Mode: syscall.S_IFDIR}
		t.box(ctx, c.Name)
	}
	return fusefs.NewListDirStream(entries), 0
}

// Lookup finds name among the current members and returns the top of its
// folder, making the backing folder if it is missing. The entry expires
// after dmEntryTimeout, so a member who left disappears soon; the
// attributes are the backing folder's, cached as in the other loopback
// subtrees.
func (t *toNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	if _, ok := t.members.find(name); !ok {
		return nil, syscall.ENOENT
	}
	top, errno := t.box(ctx, name)
	if errno != 0 {
		return nil, errno
	}
	var a fuse.AttrOut
	if errno := top.Getattr(ctx, nil, &a); errno != 0 {
		return nil, errno
	}
	out.Attr = a.Attr
	out.SetEntryTimeout(dmEntryTimeout)
	return top.EmbeddedInode(), 0
}

// box returns the top of member name's folder, made the first time, and
// makes its backing folder Root/to/<name> (0755) when it is missing.
func (t *toNode) box(ctx context.Context, name string) (*outboxNode, syscall.Errno) {
	dir := filepath.Join(t.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, t.errs.errno("make to/ folder", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if top := t.boxes[name]; top != nil {
		return top, 0
	}
	top, err := newOutbox(dir, t.nextSalt, name, t.syncer, t.log.With("folder", "to/"+name))
	if err != nil {
		return nil, t.errs.errno("make to/ folder", err)
	}
	t.nextSalt++
	t.NewPersistentInode(ctx, top, fusefs.StableAttr{Mode: syscall.S_IFDIR})
	t.boxes[name] = top
	return top, 0
}

// writingUnder reports whether a file at or below rel in member name's
// folder is open for writing; false for a folder never looked up.
func (t *toNode) writingUnder(name, rel string) bool {
	t.mu.Lock()
	top := t.boxes[name]
	t.mu.Unlock()
	return top != nil && top.box.writingUnder(rel)
}

// to/'s entries are the Syncer's: fixedFolder refuses every change. Inside
// a member's folder, the outbox rules apply.
var (
	_ fusefs.NodeSetattrer = (*toNode)(nil)
	_ fusefs.NodeCreater   = (*toNode)(nil)
	_ fusefs.NodeMkdirer   = (*toNode)(nil)
	_ fusefs.NodeMknoder   = (*toNode)(nil)
	_ fusefs.NodeSymlinker = (*toNode)(nil)
	_ fusefs.NodeLinker    = (*toNode)(nil)
	_ fusefs.NodeUnlinker  = (*toNode)(nil)
	_ fusefs.NodeRmdirer   = (*toNode)(nil)
	_ fusefs.NodeRenamer   = (*toNode)(nil)
)
