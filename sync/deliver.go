package sync

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
)

// The last steps of a received file: the whole-file check, mode, mtime and
// fsync, and the rename into inbox/<peer>/ (place.go walks the folders).

// placedMode is the mode a received file gets for the sender's mode m: no
// write bit for others than the owner (a member decides what it shares,
// not who may change it here), and always readable by the owner.
func placedMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o755)
	if mode == 0 {
		mode = 0o644
	}
	return mode | 0o400
}

// makeDurable sets mode and mtime, fsyncs and closes the partial.
func (ib *inbound) makeDurable(t *inTransfer) error {
	if err := t.f.Chmod(placedMode(t.meta.Mode)); err != nil {
		return err
	}
	if err := t.f.Sync(); err != nil {
		return err
	}
	ib.mu.Lock()
	t.closeFile()
	ib.mu.Unlock()
	mtime := fileTime(t.meta.MTime)
	return os.Chtimes(ib.partPath(t.key), mtime, mtime)
}

// placeFinal renames the partial to inbox/<folder>/<dirs>/<name> and
// fsyncs the folder. It returns the inbox-relative path it chose, and
// notes the placement on t for completeIn.
func (ib *inbound) placeFinal(t *inTransfer) (string, error) {
	return ib.placeAs(t, partBase(t.key)+".part", t.meta.Path)
}

// placeAs is placeFinal for the file partName of the partials folder,
// placed as the author's file at rel: a private file's is not the
// transfer's partial (the box) but the file opened from it, and its path
// is the one inside the box (private_files.go).
func (ib *inbound) placeAs(t *inTransfer, partName, rel string) (string, error) {
	folder, err := ib.folderFor(t.key.peer)
	if err != nil {
		return "", err
	}
	parts, err := openDir(ib.partsDir)
	if err != nil {
		return "", err
	}
	defer parts.close()
	comps := append([]string{folder}, strings.Split(rel, "/")...)
	dir, used, err := ib.walkTo(comps[:len(comps)-1])
	if err != nil {
		return "", err
	}
	defer dir.close()
	// Taken before the rename, which keeps inode, size and mtime: the
	// identity of exactly the file placed, not of what the name holds a
	// moment later.
	id, _, idErr := parts.statName(partName)
	dirRel := path.Join(append([]string{"inbox"}, used...)...)
	final, err := ib.placeName(t, parts, dir, partName, dirRel, comps[len(comps)-1])
	if err != nil {
		return "", err
	}
	failpoint("after-rename")
	if err := dir.sync(); err != nil {
		return "", fmt.Errorf("sync folder: %w", err)
	}
	shown := path.Join(dirRel, final)
	if idErr == nil { // else a later chmod (ATTR) leaves the file as it is
		ib.notePlaced(t, shown, id)
	}
	return shown, nil
}

// placeName renames the partial into dir (dirRel, inbox-relative). When
// the OFFER replaces an earlier transfer of the path and the file placed
// for it is in the same folder and unchanged since, the partial goes over
// it; otherwise, and if that rename fails, it gets base or the first free
// "base (n).ext", so what the user changed is never lost.
func (ib *inbound) placeName(t *inTransfer, parts, dir dirFd, partName, dirRel, base string) (string, error) {
	if prev, ok := ib.lastPlacement(t.key.peer, t.meta.Path); ok && path.Dir(prev.rel) == dirRel &&
		slices.Contains(t.meta.Replaces, prev.id) {
		name := path.Base(prev.rel)
		replaced, err := dir.replaceUnchanged(parts, partName, name, prev.file)
		if err != nil {
			ib.log.Warn("older version not replaced; the new one gets another name", "peer", t.key.peer,
				"member", ib.peers.displayName(t.key.peer), "path", prev.rel, "err", err,
				"fix", "nothing: remove the older copy if you no longer need it")
		}
		if replaced {
			return name, nil
		}
	}
	return dir.renameUnique(parts, partName, base)
}

// walkTo opens the folder inbox/<comps...>, making the folders missing
// (subdir), and returns the names it used. On error nothing stays open.
func (ib *inbound) walkTo(comps []string) (dirFd, []string, error) {
	dir, err := openDir(ib.inboxDir)
	if err != nil {
		return dir, nil, err
	}
	used := make([]string, 0, len(comps))
	for _, c := range comps {
		sub, name, err := dir.subdir(c)
		dir.close()
		if err != nil {
			return sub, nil, err
		}
		dir = sub
		used = append(used, name)
	}
	return dir, used, nil
}

// verifyWhole checks the file hash against the block list. Every block
// held was hashed before it was written (checkChunk; for a streamed file,
// checked against the list when DONE brought it) or re-hashed from the
// partial (haveBlocks on resume), so the blocks matching a list that
// matches the file hash is the whole-file check, without re-reading 1 GiB.
func verifyWhole(meta *partialMeta) error {
	if fileHashOf(meta.Size, meta.BlockSize, meta.Blocks) != meta.FileHash {
		return fmt.Errorf("whole file: %w", ErrChecksum)
	}
	return nil
}
