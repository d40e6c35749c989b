package sync

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// The last steps of a received file: the whole-file check, mode, mtime and
// fsync, and the rename into inbox/<peer>/ (place.go walks the folders).

// makeDurable sets mode and mtime, fsyncs and closes the partial.
func (ib *inbound) makeDurable(t *inTransfer) error {
	mode := os.FileMode(t.meta.Mode & 0o755)
	if mode == 0 {
		mode = 0o644
	}
	if err := t.f.Chmod(mode | 0o400); err != nil {
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
// fsyncs the folder. It returns the inbox-relative path it chose.
func (ib *inbound) placeFinal(t *inTransfer) (string, error) {
	folder, err := ib.folderFor(t.key.peer)
	if err != nil {
		return "", err
	}
	parts, err := openDir(ib.partsDir)
	if err != nil {
		return "", err
	}
	defer parts.close()
	dir, err := openDir(ib.inboxDir)
	if err != nil {
		return "", err
	}
	comps := append([]string{folder}, strings.Split(t.meta.Path, "/")...)
	used := make([]string, 0, len(comps))
	for _, c := range comps[:len(comps)-1] {
		sub, name, err := dir.subdir(c)
		dir.close()
		if err != nil {
			return "", err
		}
		dir = sub
		used = append(used, name)
	}
	defer dir.close()
	final, err := dir.renameUnique(parts, partBase(t.key)+".part", comps[len(comps)-1])
	if err != nil {
		return "", err
	}
	failpoint("after-rename")
	if err := dir.sync(); err != nil {
		return "", fmt.Errorf("sync folder: %w", err)
	}
	return path.Join(append([]string{"inbox"}, append(used, final)...)...), nil
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
