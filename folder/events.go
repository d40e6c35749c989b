package folder

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// readEvents is the fsnotify reader: it routes each event to the outbox or
// chat debouncer and watches new outbox subfolders at once, so files that
// land in them are not missed. It closes both outputs when the watcher
// closes.
func (f *Tree) readEvents(w *fsnotify.Watcher, outbox, chat chan<- event) {
	defer close(outbox)
	defer close(chat)
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			f.route(w, ev, outbox, chat)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			// An overflow loses events; the periodic chat check and the
			// engine's rescan at the next start cover what we miss.
			f.log.Warn("watch error", "err", err)
		}
	}
}

// route sends one fsnotify event where it belongs. Chmod alone is
// ignored, and so is everything under inbox/ and sent/ (the engine's own
// writes are not even watched there).
func (f *Tree) route(w *fsnotify.Watcher, ev fsnotify.Event, outbox, chat chan<- event) {
	op := ev.Op &^ fsnotify.Chmod
	if op == 0 {
		return
	}
	switch {
	case ev.Name == f.chat || ev.Name == f.chatLog:
		chat <- event{Path: ev.Name, Op: op}
	case under(f.outbox, ev.Name):
		if op.Has(fsnotify.Create) {
			if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
				f.addTree(w, ev.Name, outbox)
				return
			}
		}
		outbox <- event{Path: ev.Name, Op: op}
	}
}

// under reports whether p is strictly inside dir.
func under(dir, p string) bool {
	return strings.HasPrefix(p, dir+string(filepath.Separator))
}

// addTree watches a folder that appeared in outbox (made, or moved or
// copied in) and every folder below it, and reports the files already
// inside: they may have been written before the watch existed. A file seen
// both here and by an event is merged by the debouncer.
func (f *Tree) addTree(w *fsnotify.Watcher, root string, outbox chan<- event) {
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // vanished meanwhile: its removal has its own event
		}
		if d.IsDir() {
			if err := w.Add(p); err != nil {
				f.log.Warn("watch outbox folder", "path", p, "err", err)
			}
			return nil
		}
		outbox <- event{Path: p, Op: fsnotify.Create}
		return nil
	})
	if err != nil {
		f.log.Warn("scan outbox folder", "path", root, "err", err)
	}
}
