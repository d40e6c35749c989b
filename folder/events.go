package folder

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// readEvents is the event reader: it routes each fsnotify event and each
// close after writing to the box debouncer (outbox/ and to/) or the chat
// debouncer (chat, dm/ and their logs), and watches new subfolders of
// the boxes at once, so files that land in them are not missed.
// It reads until fsnotify and closes are both closed, then closes both
// outputs.
func (f *Tree) readEvents(w *watches, closes <-chan string, boxes, chat chan<- event) {
	defer close(boxes)
	defer close(chat)
	events, errs := w.fs.Events, w.fs.Errors
	for events != nil || closes != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events, errs = nil, nil
				continue
			}
			f.route(w, ev, boxes, chat)
		case p, ok := <-closes:
			if !ok {
				closes = nil
				continue
			}
			// A close is a Write for the loops: they check the file again.
			f.route(w, fsnotify.Event{Name: p, Op: fsnotify.Write}, boxes, chat)
		case err, ok := <-errs:
			if !ok {
				events, errs = nil, nil
				continue
			}
			// An overflow loses events: chat and dm/ are checked again
			// now (the empty path means every file), and the engine
			// rescans outbox/ and to/ at the next start.
			chat <- event{Op: fsnotify.Write}
			f.log.Warn("file changes missed", "err", err, "fix", "nothing: outbox/ and to/ are scanned again at the next start; save a file again to send it now")
		}
	}
}

// route sends one fsnotify event where it belongs. Everything under
// inbox/ and sent/ is ignored (the engine's own writes are not even
// watched there), and so is Chmod alone on chat, dm/, the logs, to/ and
// the names in to/. Every name under dm/ goes to the chat loop, which
// tells members' files from others, and to/ itself and every name in it
// to the box loop, which tells members' folders from others. Below
// those folders, as in outbox, a Chmod counts: a mode change is a new
// version for the engine, and the box loop drops the Chmods that changed
// nothing it reports.
func (f *Tree) route(w *watches, ev fsnotify.Event, boxes, chat chan<- event) {
	switch {
	case ev.Name == f.dm:
		if ev.Op.Has(fsnotify.Remove) || ev.Op.Has(fsnotify.Rename) {
			f.remakeDM(w, chat)
		}
	case ev.Name == f.chat || filepath.Dir(ev.Name) == f.dm || f.logs.has(ev.Name):
		if op := ev.Op &^ fsnotify.Chmod; op != 0 {
			chat <- event{Path: ev.Name, Op: op}
		}
	case ev.Name == f.to || filepath.Dir(ev.Name) == f.to:
		if op := ev.Op &^ fsnotify.Chmod; op != 0 {
			boxes <- event{Path: ev.Name, Op: op}
		}
	case under(f.outbox, ev.Name) || under(f.to, ev.Name):
		if ev.Op.Has(fsnotify.Create) {
			if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
				f.addTree(w, ev.Name, boxes)
				return
			}
		}
		boxes <- event{Path: ev.Name, Op: ev.Op}
	}
}

// remakeDM makes dm/ again after the user removed or renamed it (a
// renamed folder keeps the user's copies), watches it, and has the chat
// loop check every file, which writes them again.
func (f *Tree) remakeDM(w *watches, chat chan<- event) {
	err := os.MkdirAll(f.dm, 0o700)
	if err == nil {
		err = w.add(f.dm)
	}
	if err != nil {
		f.log.Warn("dm folder not made again", "err", err, "fix", "check permissions of the folder, then restart meshfs")
	}
	chat <- event{Op: fsnotify.Write}
}

// under reports whether p is strictly inside dir.
func under(dir, p string) bool {
	return strings.HasPrefix(p, dir+string(filepath.Separator))
}

// addTree watches a folder that appeared in a box (made, or moved or
// copied in) and every folder below it, and reports the files and
// symbolic links already inside (they may have been written before the
// watch existed), the folder itself, and each folder below it that has no
// entries (the engine sends those as empty folders). A path seen both
// here and by an event is merged by the debouncer.
func (f *Tree) addTree(w *watches, root string, boxes chan<- event) {
	for _, p := range f.watchTree(w.add, root) {
		boxes <- event{Path: p, Op: fsnotify.Create}
	}
}

// watchTree watches root and every folder below it with watch, and
// returns what addTree reports of it: the files and symbolic links
// inside, then root and each folder below it that has no entries.
// WalkDir does not follow symbolic links, so a link to a folder is
// returned, not entered.
func (f *Tree) watchTree(watch func(string) error, root string) []string {
	var paths []string
	var dirs []string           // every folder, in walk order
	filled := map[string]bool{} // folders seen to have an entry
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // vanished meanwhile: its removal has its own event
		}
		if p != root {
			filled[filepath.Dir(p)] = true
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			if err := watch(p); err != nil && !errors.Is(err, fsnotify.ErrClosed) { // closed: the tree is stopping
				f.log.Warn("outbox folder not watched", "path", p, "err", err,
					"fix", "raise fs.inotify.max_user_watches (Linux), then restart meshfs")
			}
			return nil
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		f.log.Warn("outbox folder not fully scanned", "path", root, "err", err,
			"fix", "check permissions inside outbox/ and to/, then restart meshfs")
	}
	for _, p := range dirs {
		if p == root || !filled[p] {
			paths = append(paths, p)
		}
	}
	return paths
}
