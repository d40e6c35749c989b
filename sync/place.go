package sync

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// A received file is placed by walking from inbox/ one folder at a time
// through open folder handles, never following a link, and renamed in
// without replacing anything (renameUnique), except over the file placed
// for a transfer the new one replaces, when that file is still the one
// placed (replaceUnchanged): place_unix.go does it with *at calls,
// place_windows.go with handle-relative NT calls.

// maxNumbered bounds the "name (n).ext" search.
const maxNumbered = 10000

// errNameTaken is what a placement's rename reports when the name it tried
// appeared meanwhile: placeUnique then tries the next one.
var errNameTaken = errors.New("name taken")

// folderName picks the child folder of a folder for comp, given its
// entries (foldNames): a folder whose name clashes case-folded is reused, a
// file in the way gets the folder a numbered name. create says it must be
// made.
func folderName(names map[string]string, isDir map[string]bool, comp string) (name string, create bool) {
	for n := 0; n < maxNumbered; n++ {
		cand := numberedName(comp, n)
		k := foldKey(cand)
		existing, ok := names[k]
		switch {
		case !ok:
			return cand, true
		case isDir[k]:
			return existing, false
		}
	}
	return comp, false // every number taken by files: opening comp fails
}

// placeUnique renames a file in under base or "base (n).ext", never
// replacing anything: candidates clashing case-folded with an entry of the
// folder (names) are skipped, and rename, which must not replace, reports
// errNameTaken for a name that appeared meanwhile.
func placeUnique(names map[string]string, base string, rename func(name string) error) (string, error) {
	for n := 0; n < maxNumbered; n++ {
		cand := numberedName(base, n)
		if _, taken := names[foldKey(cand)]; taken {
			continue
		}
		err := rename(cand)
		if errors.Is(err, errNameTaken) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("rename to %s: %w", cand, err)
		}
		return cand, nil
	}
	return "", fmt.Errorf("no free name for %s: %w", base, fs.ErrExist)
}

// foldEntries indexes a folder's entries by foldKey: the name each key
// stands for, and whether it is a real folder (not a link to one).
func foldEntries(ents []os.DirEntry) (names map[string]string, isDir map[string]bool) {
	names, isDir = map[string]string{}, map[string]bool{}
	for _, ent := range ents {
		k := foldKey(ent.Name())
		names[k] = ent.Name()
		isDir[k] = ent.IsDir()
	}
	return names, isDir
}

// fileID is what tells the file meshfs placed from one the user put or
// changed under its name since (a later chmod from the sender, ATTR, only
// touches the file placed): a write changes the size or the mtime (the
// placed file has the sender's mtime, an edit sets the current time), a
// save by rename or a delete and re-create changes the inode.
type fileID struct {
	Ino   uint64 // file index on Windows
	Size  uint64
	MTime int64 // nanoseconds since the Unix epoch
}

// replaceUnchanged renames from/fromName over name in d when name is a
// regular file (not a link) that is still want, and reports whether it
// did. Anything else, including name being gone, leaves name alone for
// the caller's numbered fallback; err is only a failed rename, after which
// fromName is still where it was.
func (d dirFd) replaceUnchanged(from dirFd, fromName, name string, want fileID) (bool, error) {
	if want.Ino == 0 { // not recorded: nothing to compare with
		return false, nil
	}
	got, regular, err := d.statName(name)
	if err != nil || !regular || got != want {
		return false, nil
	}
	// A user who writes to, or renames a file over, name between the
	// check above and the rename below loses that change. The window is
	// one system call wide and left open: closing it would take swapping
	// the files (RENAME_EXCHANGE, macOS's RENAME_SWAP), checking the old
	// one and swapping back, which Windows cannot do and which would show
	// readers the new version vanish again.
	if err := d.renameOver(from, fromName, name); err != nil {
		return false, fmt.Errorf("rename over %s: %w", name, err)
	}
	return true, nil
}
