package folder

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// readEvents is the event reader: it routes each fsnotify event and each
// close after writing to the outbox or chat debouncer, and watches new
// outbox subfolders at once, so files that land in them are not missed.
// It reads until fsnotify and closes are both closed, then closes both
// outputs.
func (f *Tree) readEvents(w *watches, closes <-chan string, outbox, chat chan<- event) {
	defer close(outbox)
	defer close(chat)
	events, errs := w.fs.Events, w.fs.Errors
	for events != nil || closes != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				events, errs = nil, nil
				continue
			}
			f.route(w, ev, outbox, chat)
		case p, ok := <-closes:
			if !ok {
				closes = nil
				continue
			}
			// A close is a Write for the loops: they check the file again.
			f.route(w, fsnotify.Event{Name: p, Op: fsnotify.Write}, outbox, chat)
		case err, ok := <-errs:
			if !ok {
				events, errs = nil, nil
				continue
			}
			// An overflow loses events: chat is checked again now, and
			// the engine rescans outbox/ at the next start.
			chat <- event{Path: f.chat, Op: fsnotify.Write}
			f.log.Warn("file changes missed", "err", err, "fix", "nothing: outbox/ is scanned again at the next start; save a file again to send it now")
		}
	}
}

// route sends one fsnotify event where it belongs. Everything under
// inbox/ and sent/ is ignored (the engine's own writes are not even
// watched there), and so is Chmod alone on chat. In outbox a Chmod counts:
// a mode change is a new version for the engine, and the outbox loop
// drops the Chmods that changed nothing it reports.
func (f *Tree) route(w *watches, ev fsnotify.Event, outbox, chat chan<- event) {
	switch {
	case ev.Name == f.chat || ev.Name == f.chatLog:
		if op := ev.Op &^ fsnotify.Chmod; op != 0 {
			chat <- event{Path: ev.Name, Op: op}
		}
	case under(f.outbox, ev.Name):
		if ev.Op.Has(fsnotify.Create) {
			if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
				f.addTree(w, ev.Name, outbox)
				return
			}
		}
		outbox <- event{Path: ev.Name, Op: ev.Op}
	}
}

// under reports whether p is strictly inside dir.
func under(dir, p string) bool {
	return strings.HasPrefix(p, dir+string(filepath.Separator))
}

// addTree watches a folder that appeared in outbox (made, or moved or
// copied in) and every folder below it, and reports the files and
// symbolic links already inside (they may have been written before the
// watch existed), the folder itself, and each folder below it that has no
// entries (the engine sends those as empty folders). A path seen both
// here and by an event is merged by the debouncer. WalkDir does not
// follow symbolic links, so a link to a folder is reported, not entered.
func (f *Tree) addTree(w *watches, root string, outbox chan<- event) {
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
			if err := w.add(p); err != nil {
				f.log.Warn("outbox folder not watched", "path", p, "err", err,
					"fix", "raise fs.inotify.max_user_watches (Linux), then restart meshfs")
			}
			return nil
		}
		outbox <- event{Path: p, Op: fsnotify.Create}
		return nil
	})
	if err != nil {
		f.log.Warn("outbox folder not fully scanned", "path", root, "err", err,
			"fix", "check permissions inside outbox/, then restart meshfs")
	}
	for _, p := range dirs {
		if p == root || !filled[p] {
			outbox <- event{Path: p, Op: fsnotify.Create}
		}
	}
}
