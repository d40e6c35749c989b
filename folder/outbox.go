package folder

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// fileState is what the outbox loop last reported for a file: if the
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

// outboxWatch is the outbox loop's state, owned by that goroutine.
type outboxWatch struct {
	f        *Tree
	held     map[string]bool      // complete-looking files a process still holds open for writing
	reported map[string]fileState // files reported closed, until they change or go
}

// heldRecheck is how often, on Linux, files still held open for writing
// are checked without an event: the close watcher reports a writer's
// close, except for one that opened the file through a hard link outside
// outbox/.
const heldRecheck = 5 * time.Second

// outboxLoop reports settled outbox paths to the engine. A file that
// some process still has open for writing is held and checked again at
// each close after writing (Linux), and on a timer that runs only while a
// file is held (every heldRecheck on Linux, every Debounce elsewhere),
// until its writers are gone, however long they pause.
func (f *Tree) outboxLoop(ctx context.Context, in <-chan event) {
	o := &outboxWatch{f: f, held: make(map[string]bool), reported: make(map[string]fileState)}
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
			o.settle(o.withHeld(paths))
			if !open {
				return
			}
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
func (o *outboxWatch) withHeld(paths []string) []string {
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
// the engine walks it). Other file types are not sent.
func (o *outboxWatch) settle(paths []string) {
	var targets []writeTarget
	for _, p := range paths {
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			o.removed(p)
		case err != nil:
			o.f.log.Warn("outbox file unreadable", "path", o.rel(p), "err", err, "fix", "check its permissions, then save it again")
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
			o.f.log.Debug("outbox file open for writing", "path", o.rel(t.Path))
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
func (o *outboxWatch) newFolder(p string, fi os.FileInfo) {
	delete(o.held, p)
	if old, done := o.reported[p]; done && old.mode.IsDir() {
		return
	}
	st, _ := stateOf(fi) // only its mode matters here
	o.reported[p] = st
	rel := o.rel(p)
	o.f.log.Debug("outbox folder new", "path", rel)
	o.f.cfg.Syncer.OutboxClosed(rel)
}

// closed reports a finished file once per version of it.
func (o *outboxWatch) closed(p string, st fileState) {
	delete(o.held, p)
	if o.reported[p] == st {
		return
	}
	o.reported[p] = st
	rel := o.rel(p)
	o.f.log.Debug("outbox file closed", "path", rel, "bytes", st.size)
	o.f.cfg.Syncer.OutboxClosed(rel)
}

// removed reports a path that is gone: deleted or moved away by the user,
// or moved to sent/ by the engine (which ignores removals of files it has
// finished).
func (o *outboxWatch) removed(p string) {
	delete(o.held, p)
	delete(o.reported, p)
	for k := range o.reported { // p may have been a folder
		if under(p, k) {
			delete(o.reported, k)
		}
	}
	for k := range o.held {
		if under(p, k) {
			delete(o.held, k)
		}
	}
	rel := o.rel(p)
	o.f.log.Debug("outbox path removed", "path", rel)
	o.f.cfg.Syncer.OutboxRemoved(rel)
}

// rel is p relative to outbox/, slash-separated, as the engine names files.
func (o *outboxWatch) rel(p string) string {
	r, err := filepath.Rel(o.f.outbox, p)
	if err != nil {
		return filepath.ToSlash(p) // cannot happen: the reader routes only paths under outbox
	}
	return filepath.ToSlash(r)
}
