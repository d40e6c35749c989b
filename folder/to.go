package folder

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// toFolders is the box loop's state for Dir/to: one folder per member
// other than this node, named as Syncer.Conversations names them (the
// names of dm/), each a box like outbox/ whose files go to that member
// only. Owned by the box loop.
type toFolders struct {
	o     *boxWatch
	watch func(dir string) error // watches a folder with fsnotify and the close watcher

	known   bool            // the members were read at least once
	open    map[string]bool // the current members, by name: their folders are boxes
	strays  map[string]bool // names under to/ already warned about as no member's
	badName map[string]bool // names from Conversations already logged as unusable
}

func newToFolders(o *boxWatch, watch func(string) error) toFolders {
	return toFolders{
		o:       o,
		watch:   watch,
		open:    make(map[string]bool),
		strays:  make(map[string]bool),
		badName: make(map[string]bool),
	}
}

// boxOf returns the member whose folder p is in, if p is below to/ and
// that folder is a member's.
func (t *toFolders) boxOf(p string) (string, bool) {
	to := t.o.f.to
	if !under(to, p) {
		return "", false
	}
	name, _, _ := strings.Cut(p[len(to)+1:], string(filepath.Separator))
	return name, t.open[name]
}

// split parts the paths of to/ itself and of the names in it (entries)
// from the others (rest), which are settled like outbox paths.
func (t *toFolders) split(paths []string) (rest, entries []string) {
	for _, p := range paths {
		if p == t.o.f.to || filepath.Dir(p) == t.o.f.to {
			entries = append(entries, p)
		} else {
			rest = append(rest, p)
		}
	}
	return rest, entries
}

// handle acts on changes of to/ itself (removed or renamed: it is made
// again) and of the names in it (a member's folder removed, renamed or
// replaced; another name made). Before the members are first read it
// leaves the names alone: that first read looks at every name.
func (t *toFolders) handle(entries []string) {
	for _, p := range entries {
		switch name := filepath.Base(p); {
		case p == t.o.f.to:
			t.remake()
		case !t.known:
		case t.open[name]:
			t.openBox(name, true)
		default:
			t.checkStray(name)
		}
	}
}

// refresh reads the members from the engine: a new member's folder is
// made and watched, a removed member's stays as it is and is no box any
// more. The first refresh also warns about the names under to/ that are
// no member's.
func (t *toFolders) refresh() {
	want := make(map[string]bool)
	for _, conv := range t.o.f.cfg.Syncer.Conversations() {
		if t.usable(conv.Name) {
			want[conv.Name] = true
		}
	}
	for name := range t.open {
		if !want[name] {
			t.closeBox(name)
		}
	}
	for name := range want {
		if !t.open[name] {
			t.open[name] = true
			delete(t.strays, name)
			t.openBox(name, false)
		}
	}
	if !t.known {
		t.known = true
		t.checkAll()
	}
}

// usable checks a member's name from the engine as dm/ does: it must be
// one file name. An unusable one is logged once and skipped.
func (t *toFolders) usable(name string) bool {
	if validDMName(name) {
		return true
	}
	if !t.badName[name] {
		t.badName[name] = true
		t.o.f.log.Warn("member has no to/ folder", "name", name,
			"fix", "nothing here: the engine gave a name unusable as a file name; report it")
	}
	return false
}

// openBox makes the member's folder to/<name>/ if it is missing, and
// watches it and every folder below it. What the folder holds is
// reported if openBox made it (files put there before the watch was in
// place) or after an event on the folder itself (removed and made again,
// or replaced by a folder moved in); then the files reported before and
// gone now are reported removed too. A folder found when the name
// becomes a member's is not reported: at start the engine rescans to/
// as it rescans outbox/, and files put in a folder that was no member's
// (one of a removed member of that name, say) must not go to the member
// who has the name now.
func (t *toFolders) openBox(name string, changed bool) {
	root := filepath.Join(t.o.f.to, name)
	made := os.Mkdir(root, 0o700) == nil
	if fi, err := os.Lstat(root); err != nil || !fi.IsDir() {
		t.o.f.log.Warn("member's to/ folder not made", "path", toName+"/"+name, "err", err,
			"fix", "move away what has the member's name under to/; the folder is made at once")
		return
	}
	paths := t.o.f.watchTree(t.watch, root)
	if changed {
		t.o.sweep(root)
	}
	if made || changed {
		t.o.settle(paths) // root itself is in no box: settle skips it
	}
}

// closeBox ends the box of a removed member: its folder stays as it is,
// what is put there is not sent, and the user is told once.
func (t *toFolders) closeBox(name string) {
	delete(t.open, name)
	t.o.forget(filepath.Join(t.o.f.to, name))
	t.checkStray(name)
}

// remake makes to/ again after the user removed or renamed it (a
// renamed folder keeps its files and is left alone), watches it, and
// makes every member's folder in it.
func (t *toFolders) remake() {
	err := os.MkdirAll(t.o.f.to, 0o700)
	if err == nil {
		err = t.watch(t.o.f.to)
	}
	if err != nil && !errors.Is(err, fsnotify.ErrClosed) { // closed: the tree is stopping
		t.o.f.log.Warn("to folder not made again", "err", err, "fix", "check permissions of the folder, then restart meshfs")
	}
	for name := range t.open {
		t.openBox(name, true)
	}
}

// checkAll warns about every name under to/ that is no member's.
func (t *toFolders) checkAll() {
	entries, err := os.ReadDir(t.o.f.to)
	if err != nil {
		return // to/ is gone: its removal has an event of its own
	}
	for _, e := range entries {
		if !t.open[e.Name()] {
			t.checkStray(e.Name())
		}
	}
}

// checkStray warns once about a name under to/ that is no member's: a
// folder the user made, or a removed member's. Nothing in it is
// reported, and nothing is deleted or moved. Hidden names (editors' and
// file browsers' files) are skipped, and so is a name already gone.
func (t *toFolders) checkStray(name string) {
	if t.strays[name] || strings.HasPrefix(name, ".") || !exists(filepath.Join(t.o.f.to, name)) {
		return
	}
	t.strays[name] = true
	t.o.f.log.Warn("folder under to/ is no member's; nothing in it is sent", "path", toName+"/"+name,
		"fix", "the folders under to/ are the members'; see the peers file")
}

// sweep reports removed each path under dir that was reported and is
// gone now, which no event named (dir was moved away or replaced).
func (o *boxWatch) sweep(dir string) {
	var gone []string
	for p := range o.reported {
		if under(dir, p) && !exists(p) {
			gone = append(gone, p)
		}
	}
	slices.Sort(gone) // a folder before its files: its removal forgets them
	for _, p := range gone {
		if _, ok := o.reported[p]; ok {
			o.removed(p)
		}
	}
}
