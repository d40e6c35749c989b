package folder

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// fileState is what the box loop last reported for a file: if the
// file still has it, another event for the path (a late Write, the
// debouncer and the writer poll both firing, a Chmod that changed
// nothing, a hard link's change of the link count) is not reported again.
// The mode is part of it: the engine sends a mode-only change.
type fileState struct {
	id    fileID
	size  int64
	mtime time.Time
	mode  fs.FileMode
}

// boxWatch is the box loop's state, owned by that goroutine. A box is a
// folder whose files the engine sends: outbox/, named "", or to/<name>/
// of a member, named by the member's name. Paths are absolute, so one
// map serves every box.
type boxWatch struct {
	f        *Tree
	held     map[string]bool      // complete-looking files a process still holds open for writing
	reported map[string]fileState // files reported closed, until they change or go
	to       toFolders            // the folders under to/
}

// heldRecheck is how often, on Linux, files still held open for writing
// are checked without an event: the close watcher reports a writer's
// close, except for one that opened the file through a hard link outside
// outbox/.
const heldRecheck = 5 * time.Second

// boxLoop reports settled paths of the boxes to the engine. A file that
// some process still has open for writing is held and checked again at
// each close after writing (Linux), and on a timer that runs only while a
// file is held (every heldRecheck on Linux, every Debounce elsewhere),
// until its writers are gone, however long they pause. It also owns the
// folders under to/: it makes and watches (with watch) one per member,
// read again at each signal on members (toFolders).
func (f *Tree) boxLoop(ctx context.Context, in <-chan event, members <-chan struct{}, watch func(string) error) {
	o := &boxWatch{f: f, held: make(map[string]bool), reported: make(map[string]fileState)}
	o.to = newToFolders(o, watch)
	every := f.cfg.Debounce
	if seesCloses {
		every = heldRecheck
	}
	tick := time.NewTimer(every)
	defer tick.Stop()
	for {
		tick.Reset(every)
		if len(o.held) == 0 {
			tick.Stop() // idle: nothing wakes the loop but an event
		}
		select {
		case ev, ok := <-in:
			if !ok {
				return
			}
			// One /proc scan for all the paths already due (cp -r of
			// many files), not one scan per path.
			paths, open := drain(in, ev.Path)
			rest, entries := o.to.split(paths)
			o.settle(o.withHeld(rest))
			o.to.handle(entries) // after the files: a folder's removal comes after theirs
			if !open {
				return
			}
		case <-members:
			o.to.refresh()
		case <-tick.C:
			if len(o.held) > 0 {
				o.settle(slices.Collect(maps.Keys(o.held)))
			}
		case <-ctx.Done():
			return
		}
	}
}

// withHeld adds the held files to paths: a writer's close is reported
// for the name it opened, and frees the file's other names (hard links)
// too.
func (o *boxWatch) withHeld(paths []string) []string {
	for p := range o.held {
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	return paths
}

// drain returns first and the paths of the events that can be read
// from in without waiting, and whether in is still open.
func drain(in <-chan event, first string) (paths []string, open bool) {
	paths = []string{first}
	for {
		select {
		case ev, ok := <-in:
			if !ok {
				return paths, false
			}
			if !slices.Contains(paths, ev.Path) {
				paths = append(paths, ev.Path)
			}
		default:
			return paths, true
		}
	}
}

// settle decides, for paths that have gone quiet, what to tell the engine:
// gone means removed; a regular file without writers means closed; with
// writers it stays held. A symbolic link (never followed) is reported
// like a closed file, and a folder once (the reader sends only new ones;
// the engine walks it). Other file types are not sent, and nothing in a
// folder under to/ that is not an open box (toFolders.open).
func (o *boxWatch) settle(paths []string) {
	var targets []writeTarget
	for _, p := range paths {
		if _, _, ok := o.boxOf(p); !ok {
			continue
		}
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			o.removed(p)
		case err != nil:
			o.logFor(p).Warn("outbox file unreadable", "err", err, "fix", "check its permissions, then save it again")
		case fi.Mode().IsRegular():
			if st, ok := stateOf(fi); ok {
				targets = append(targets, writeTarget{Path: p, ID: st.id})
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			if st, ok := stateOf(fi); ok {
				o.closed(p, st)
			}
		case fi.IsDir():
			o.newFolder(p, fi)
		default:
			delete(o.held, p)
		}
	}
	writers := openForWriting(targets)
	for _, t := range targets {
		if writers[t.ID] {
			o.held[t.Path] = true
			o.logFor(t.Path).Debug("outbox file open for writing")
			continue
		}
		if st, ok := restat(t); ok {
			o.closed(t.Path, st)
		}
	}
}

// restat returns the state of target t read again after the writer scan:
// a writer that wrote and closed during the scan left a state newer than
// the one read before it, and reporting the older one would report the
// file twice. It fails when t's path is gone or names another file now;
// that change has an event of its own.
func restat(t writeTarget) (fileState, bool) {
	fi, err := os.Lstat(t.Path)
	if err != nil || !fi.Mode().IsRegular() {
		return fileState{}, false
	}
	st, ok := stateOf(fi)
	return st, ok && st.id == t.ID
}

// stateOf returns the identity, size, mtime and mode of a file.
func stateOf(fi os.FileInfo) (fileState, bool) {
	id, ok := idOf(fi)
	return fileState{id: id, size: fi.Size(), mtime: fi.ModTime(), mode: fi.Mode()}, ok
}

// newFolder reports folder p unless it was reported as a folder already:
// its mtime changes with every entry added, and a Chmod of a folder sends
// nothing.
func (o *boxWatch) newFolder(p string, fi os.FileInfo) {
	delete(o.held, p)
	if old, done := o.reported[p]; done && old.mode.IsDir() {
		return
	}
	st, _ := stateOf(fi) // only its mode matters here
	o.reported[p] = st
	o.logFor(p).Debug("outbox folder new")
	o.tellClosed(p)
}

// closed reports a finished file once per version of it.
func (o *boxWatch) closed(p string, st fileState) {
	delete(o.held, p)
	if o.reported[p] == st {
		return
	}
	o.reported[p] = st
	o.logFor(p).Debug("outbox file closed", "bytes", st.size)
	o.tellClosed(p)
}

// removed reports a path that is gone: deleted or moved away by the user,
// or moved to sent/ by the engine (which ignores removals of files it has
// finished).
func (o *boxWatch) removed(p string) {
	o.forget(p)
	o.logFor(p).Debug("outbox path removed")
	box, rel, _ := o.boxOf(p)
	if box == "" {
		o.f.cfg.Syncer.OutboxRemoved(rel)
	} else {
		o.f.cfg.Syncer.ToRemoved(box, rel)
	}
}

// forget drops what the loop knows of p and, if it was a folder, of
// everything below it.
func (o *boxWatch) forget(p string) {
	delete(o.held, p)
	delete(o.reported, p)
	for k := range o.reported {
		if under(p, k) {
			delete(o.reported, k)
		}
	}
	for k := range o.held {
		if under(p, k) {
			delete(o.held, k)
		}
	}
}

// tellClosed reports p to the engine as complete.
func (o *boxWatch) tellClosed(p string) {
	box, rel, _ := o.boxOf(p)
	if box == "" {
		o.f.cfg.Syncer.OutboxClosed(rel)
	} else {
		o.f.cfg.Syncer.ToClosed(box, rel)
	}
}

// boxOf returns the box of p ("" for outbox/, a member's name for
// to/<name>/) and p relative to it, slash-separated, as the engine names
// files. It fails for a path in no open box: outside outbox/ and to/, a
// box's folder itself, or a folder under to/ that is no member's (the
// reader routes paths of a member removed meanwhile).
func (o *boxWatch) boxOf(p string) (box, rel string, ok bool) {
	root := o.f.outbox
	if !under(root, p) {
		box, ok = o.to.boxOf(p)
		if !ok {
			return "", "", false
		}
		root = filepath.Join(o.f.to, box)
	}
	r, err := filepath.Rel(root, p)
	if err != nil || r == "." {
		return "", "", false
	}
	return box, filepath.ToSlash(r), true
}

// logFor is the log with p's box and its path in it.
func (o *boxWatch) logFor(p string) *slog.Logger {
	box, rel, _ := o.boxOf(p)
	if box == "" {
		return o.f.log.With("path", rel)
	}
	return o.f.log.With("to", box, "path", rel)
}
