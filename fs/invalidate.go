//go:build linux

package fs

import (
	"errors"
	"log/slog"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
)

// maxChanges bounds the paths waiting for the invalidater. Past it, a new
// path is folded into the top folder of its subtree, which stands for
// everything below it: Changed never blocks and never loses a change, and
// the set holds at most maxChanges+len(subtrees) paths.
const maxChanges = 1024

// subtrees are the tops of the loopback subtrees: the only part of the
// tree whose files change behind the kernel's back. to/ holds one loopback
// subtree per member, to/<name>/.
var subtrees = []string{"outbox", "sent", "inbox", "to"}

// treePath cleans rel, a '/'-separated path relative to Config.Root, and
// reports whether it lies in a loopback subtree.
func treePath(rel string) (string, bool) {
	if rel == "" || path.IsAbs(rel) {
		return "", false
	}
	rel = path.Clean(rel)
	top, _, _ := strings.Cut(rel, "/")
	return rel, slices.Contains(subtrees, top)
}

// changeSet is the set of tree paths waiting for invalidation. A path
// stands for itself and everything below it, so a path already covered by
// a waiting folder is not added again.
type changeSet struct {
	max int // immutable

	mu    sync.Mutex
	paths map[string]bool // guarded by mu
}

func newChangeSet(max int) *changeSet {
	return &changeSet{max: max, paths: make(map[string]bool)}
}

// add records rel. When the set is full, rel's subtree top is recorded
// instead and the paths below it are dropped, since the top covers them.
func (c *changeSet) add(rel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.coveredLocked(rel) {
		return
	}
	if len(c.paths) >= c.max {
		rel, _, _ = strings.Cut(rel, "/")
		for p := range c.paths {
			if strings.HasPrefix(p, rel+"/") {
				delete(c.paths, p)
			}
		}
	}
	c.paths[rel] = true
}

// coveredLocked reports whether rel or a folder above it is waiting.
func (c *changeSet) coveredLocked(rel string) bool {
	for p := rel; ; {
		if c.paths[p] {
			return true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return false
		}
		p = p[:i]
	}
}

// take empties the set and returns its paths in reverse order, so a path
// comes before the folders above it: a removed file is dropped from the
// kernel's cache before its removed folder, which is then empty there.
func (c *changeSet) take() []string {
	c.mu.Lock()
	paths := c.paths
	c.paths = make(map[string]bool)
	c.mu.Unlock()
	out := slices.Sorted(maps.Keys(paths))
	slices.Reverse(out)
	return out
}

// invalidater makes the kernel drop what it caches for tree paths that
// changed behind its back. Dropping an entry takes the kernel's lock on
// its folder, which a FUSE operation in progress may hold while it waits
// for this process; so notifications are never sent from inside a FUSE
// operation or under a lock one may wait for. Changed only records the
// path, and one goroutine (run), owned by the Server, sends them.
type invalidater struct {
	// immutable after newInvalidater
	root    *fusefs.Inode // the mount's top folder
	backing string        // Config.Root
	log     *slog.Logger
	pending *changeSet
	wake    chan struct{} // capacity 1: pending may hold paths
	quit    chan struct{} // closed by stop
	done    chan struct{} // closed when run returns

	quitOnce sync.Once
}

func newInvalidater(root *fusefs.Inode, backing string, log *slog.Logger) *invalidater {
	return &invalidater{
		root:    root,
		backing: backing,
		log:     log,
		pending: newChangeSet(maxChanges),
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// changed records rel (already checked by treePath) and wakes run.
func (v *invalidater) changed(rel string) {
	if v.stopping() {
		return
	}
	v.pending.add(rel)
	select {
	case v.wake <- struct{}{}:
	default: // run is already due to look
	}
}

// run sends the notifications until stop.
func (v *invalidater) run() {
	defer close(v.done)
	for {
		select {
		case <-v.quit:
			return
		case <-v.wake:
		}
		for _, rel := range v.pending.take() {
			if v.stopping() {
				return
			}
			v.invalidate(rel)
		}
	}
}

// stop ends run and waits for it. Idempotent and safe to call from several
// goroutines at once.
func (v *invalidater) stop() {
	v.quitOnce.Do(func() { close(v.quit) })
	<-v.done
}

func (v *invalidater) stopping() bool {
	select {
	case <-v.quit:
		return true
	default:
		return false
	}
}

// invalidate drops what the kernel caches for rel and below it.
func (v *invalidater) invalidate(rel string) {
	dir, name, node := v.resolve(rel)
	if node != nil {
		v.reconcile(dir, name, node, rel)
		return
	}
	// The kernel never looked the name up, or has forgotten it: at most
	// an expired negative entry is left to drop, and the folder's own
	// attributes (mtime, link count) are stale.
	v.note("entry", rel, dir.NotifyEntry(name))
	v.note("folder", rel, dir.NotifyContent(0, 0))
}

// resolve walks rel through the nodes go-fuse knows, which are the only
// ones the kernel can have cached. It returns rel's node, its folder and
// its name; when rel is not known, node is nil and dir and name are the
// deepest known folder and the first unknown name in it.
func (v *invalidater) resolve(rel string) (dir *fusefs.Inode, name string, node *fusefs.Inode) {
	node = v.root
	for part := range strings.SplitSeq(rel, "/") {
		dir, name, node = node, part, node.GetChild(part)
		if node == nil {
			break
		}
	}
	return dir, name, node
}

// entryState is what the backing tree holds at a known node's path.
type entryState int

const (
	same     entryState = iota // the node's file
	gone                       // nothing
	replaced                   // another file, or it cannot be checked
)

// reconcile compares node, entry name of dir at rel, with the backing
// tree. A name that is gone is deleted from the kernel's cache; a name now
// holding another file has its entry dropped, so the next access looks it
// up again; a file still there has its attributes and pages dropped, and a
// folder still there is reconciled below, child by known child.
func (v *invalidater) reconcile(dir *fusefs.Inode, name string, node *fusefs.Inode, rel string) {
	switch v.backingState(dir, node, rel) {
	case gone:
		v.deleted(dir, name, node, rel)
	case replaced:
		v.note("entry", rel, dir.NotifyEntry(name))
		v.note("folder", rel, dir.NotifyContent(0, 0))
	case same:
		v.note("content", rel, node.NotifyContent(0, 0))
		if !node.IsDir() {
			return
		}
		for child, ch := range node.Children() {
			if v.stopping() {
				return
			}
			v.reconcile(node, child, ch, path.Join(rel, child))
		}
	}
}

// backingState says whether rel in the backing tree still holds node's
// file.
func (v *invalidater) backingState(dir, node *fusefs.Inode, rel string) entryState {
	var st syscall.Stat_t
	err := syscall.Lstat(filepath.Join(v.backing, filepath.FromSlash(rel)), &st)
	switch {
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR):
		return gone
	case err != nil:
		return replaced
	case dir == v.root:
		return same // a subtree's top (or to/): go-fuse numbers it, not the backing folder
	}
	lb := loopbackOf(node)
	switch {
	case lb == nil:
		return replaced
	case isTop(lb):
		return same // a member's folder, to/<name>/: numbered like the tops
	case node.StableAttr().Ino != backingIno(lb.RootData, &st):
		return replaced
	}
	return same
}

// deleted tells the kernel that name (node) left dir. NotifyDelete also
// tells inotify watchers; it fails with ENOTEMPTY for a folder whose cached
// children are still in use, and then the entry is at least dropped.
// go-fuse keeps node under dir until the kernel forgets it.
func (v *invalidater) deleted(dir *fusefs.Inode, name string, node *fusefs.Inode, rel string) {
	errno := dir.NotifyDelete(name, node)
	if errno != 0 && errno != syscall.ENOENT {
		errno = dir.NotifyEntry(name)
	}
	v.note("delete", rel, errno)
	v.note("folder", rel, dir.NotifyContent(0, 0))
}

// note logs a failed notification. ENOENT only means that the kernel had
// nothing cached to drop.
func (v *invalidater) note(what, rel string, errno syscall.Errno) {
	if errno != 0 && errno != syscall.ENOENT {
		v.log.Debug("cache invalidation failed", "what", what, "path", rel, "errno", errno)
	}
}
