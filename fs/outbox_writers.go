//go:build linux

package fs

import (
	iofs "io/fs"
	"maps"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"
)

// Which outbox files are open for writing, and under which names they
// are reported once the last writer is gone. The same holds for each
// member's folder to/<name>/; an "outbox path" is a path relative to the
// box's own top, outbox/ or to/<name>/.
//
// A file open for writing is reported by its last release, not when it is
// linked or renamed; so every name it gets meanwhile is kept in
// outbox.names, and the release reports each that still names the file.
// go-fuse's node cannot tell: it knows one parent at a time, and adds a
// new name to its tree only after Link or Rename returned, so a RELEASE
// handled in between sees only the old name.

// opened records fh, a handle that may write the file with inode number
// ino, opened or created as outbox path rel (ok false when the node has no
// path any more), and marks the file unfinished. The mark is set under mu,
// so the last release's clearing cannot come between the count and it.
func (b *outbox) opened(ino uint64, fh fusefs.FileHandle, rel string, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handles[fh] = ino
	b.writers[ino]++
	if ok {
		b.addName(ino, rel)
		b.markIncomplete(rel)
	}
}

// released forgets fh. When fh was the last writable handle of its file,
// it clears the file's unfinished-writer mark through fh (a name may be
// stale, the handle is not) and returns the inode number and the names
// the file was given while open, for Release to report once fh is closed.
func (b *outbox) released(fh fusefs.FileHandle) (ino uint64, names []string, last bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ino, ok := b.handles[fh]
	if !ok {
		return 0, nil, false
	}
	delete(b.handles, fh)
	b.writers[ino]--
	if b.writers[ino] > 0 {
		return ino, nil, false
	}
	delete(b.writers, ino)
	names = slices.Sorted(maps.Keys(b.names[ino]))
	delete(b.names, ino)
	b.clearIncomplete(fh, names)
	return ino, names, true
}

// clearIncomplete removes the unfinished-writer mark through the open
// handle fh, or, for a handle without a file descriptor, through each of
// names. A backing filesystem without user xattrs has no mark to clear.
func (b *outbox) clearIncomplete(fh fusefs.FileHandle, names []string) {
	if f, ok := fh.(fusefs.FilePassthroughFder); ok {
		if fd, ok := f.PassthroughFd(); ok {
			if err := unix.Fremovexattr(fd, xattrIncomplete); err != nil && err != unix.ENODATA {
				b.log.Debug("outbox incomplete mark not cleared", "path", names, "err", err)
			}
			return
		}
	}
	for _, rel := range names {
		b.clearIncompleteAt(rel)
	}
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

// writingUnder reports whether a file open for writing has a name at or
// below outbox path rel. The names are as many as the open files' links.
func (b *outbox) writingUnder(rel string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, names := range b.names {
		for name := range names {
			if name == rel || strings.HasPrefix(name, rel+"/") {
				return true
			}
		}
	}
	return false
}

// addName keeps rel as a name of the file with inode number ino. Callers
// hold mu.
func (b *outbox) addName(ino uint64, rel string) {
	if b.names[ino] == nil {
		b.names[ino] = make(map[string]bool)
	}
	b.names[ino][rel] = true
}

// complete reports outbox path rel, which now names the file with inode
// number ino, unless that file is open for writing: then rel is kept for
// its last release. Deciding under mu is what keeps a name given around a
// release from being lost: either the release takes rel along, or rel
// sees no writer left and is reported here.
func (b *outbox) complete(ino uint64, rel string) {
	b.mu.Lock()
	if b.writers[ino] > 0 {
		b.addName(ino, rel)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	b.closed(rel)
}

// forget drops rel and every path below it from the names kept for files
// open for writing: it was unlinked, removed or renamed away. The names
// are as many as the open files' links, so this stays small.
func (b *outbox) forget(rel string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, names := range b.names {
		for name := range names {
			if name == rel || strings.HasPrefix(name, rel+"/") {
				delete(names, name)
			}
		}
	}
}

// reportNames reports each of names that still names the regular file
// with inode number ino in the backing tree: a name unlinked meanwhile, or
// taken over by another file, is not this file's any more.
func (b *outbox) reportNames(ino uint64, names []string) {
	slices.Sort(names)
	for _, rel := range slices.Compact(names) {
		var st syscall.Stat_t
		if err := syscall.Lstat(b.backingPath(rel), &st); err != nil ||
			st.Mode&syscall.S_IFMT != syscall.S_IFREG || backingIno(b.root, &st) != ino {
			continue
		}
		b.closed(rel)
	}
}

// changed reports outbox path rel after a rename or link made it: a
// regular file (by its last release if it is open for writing) or a
// symbolic link is reported; a folder is walked in the backing tree.
func (b *outbox) changed(rel string) {
	full := b.backingPath(rel)
	var st syscall.Stat_t
	if err := syscall.Lstat(full, &st); err != nil {
		b.log.Warn("renamed outbox entry not sent: unreadable", "path", rel, "err", err,
			"fix", "check its permissions, then save or rename it again")
		return
	}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		b.complete(backingIno(b.root, &st), rel)
	case syscall.S_IFLNK:
		b.closed(rel)
	case syscall.S_IFDIR:
		b.walk(full, rel)
	}
}

// walk reports, below the backing folder full (outbox path rel, itself
// included), every regular file and symbolic link as changed does, and
// every folder that has no entries (the Syncer sends those as empty
// folders; the others arrive with what they hold). It only reads the
// backing tree, never the mount.
func (b *outbox) walk(full, rel string) {
	var dirs []string           // every folder, in walk order
	filled := map[string]bool{} // folders seen to have an entry
	err := filepath.WalkDir(full, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			b.log.Warn("renamed outbox folder not fully sent: unreadable in part", "path", rel, "err", err,
				"fix", "check permissions inside it, then rename or copy it again")
			return nil
		}
		sub, err := filepath.Rel(full, p)
		if err != nil {
			return nil
		}
		sub = path.Join(rel, filepath.ToSlash(sub))
		if p != full {
			filled[filepath.Dir(p)] = true
		}
		switch {
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Type()&iofs.ModeSymlink != 0:
			b.closed(sub)
		case d.Type().IsRegular():
			b.walkedFile(d, sub)
		}
		return nil
	})
	if err != nil {
		b.log.Warn("renamed outbox folder not fully sent: unreadable in part", "path", rel, "err", err,
			"fix", "check permissions inside it, then rename or copy it again")
	}
	for _, p := range dirs {
		if !filled[p] {
			sub, _ := filepath.Rel(full, p) // p is full or below it
			b.closed(path.Join(rel, filepath.ToSlash(sub)))
		}
	}
}

// walkedFile reports the regular file d found by walk at outbox path rel.
func (b *outbox) walkedFile(d iofs.DirEntry, rel string) {
	fi, err := d.Info()
	if err != nil {
		return // gone meanwhile: its removal is reported by itself
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		b.complete(backingIno(b.root, st), rel)
	}
}

// removed reports outbox path rel as gone and forgets it as a name of any
// file open for writing.
func (b *outbox) removed(rel string) {
	b.forget(rel)
	b.gone(rel)
}
