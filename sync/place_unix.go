//go:build linux || darwin

package sync

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// dirFd is an open folder, walked with *at calls so that a symlink planted
// inside inbox/ can never redirect a write outside it.
type dirFd int

// openDir opens path as a folder.
func openDir(path string) (dirFd, error) {
	fd, err := unix.Open(path, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", path, err)
	}
	return dirFd(fd), nil
}

func (d dirFd) close() { unix.Close(int(d)) }

// foldNames lists the folder's entries by foldKey, with whether each is a
// real folder (not a symlink).
func (d dirFd) foldNames() (map[string]string, map[string]bool, error) {
	dup, err := unix.Dup(int(d))
	if err != nil {
		return nil, nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	if _, err := f.Seek(0, 0); err != nil {
		return nil, nil, err
	}
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, nil, err
	}
	names, isDir := foldEntries(ents)
	return names, isDir, nil
}

// subdir opens (creating if needed) the child folder comp. A folder whose
// name clashes when case-folded is reused; a file in the way gets the
// folder a numbered name. It returns the name used.
func (d dirFd) subdir(comp string) (dirFd, string, error) {
	names, isDir, err := d.foldNames()
	if err != nil {
		return -1, "", err
	}
	name, create := folderName(names, isDir, comp)
	if create {
		if err := unix.Mkdirat(int(d), name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, "", fmt.Errorf("mkdir %s: %w", name, err)
		}
	}
	fd, err := unix.Openat(int(d), name, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("open folder %s: %w", name, err)
	}
	return dirFd(fd), name, nil
}

// renameUnique moves from/fromName into d under base or "base (n).ext",
// never replacing anything: candidates clashing case-folded with an
// existing entry are skipped, and a no-replace rename settles races.
func (d dirFd) renameUnique(from dirFd, fromName, base string) (string, error) {
	names, _, err := d.foldNames()
	if err != nil {
		return "", err
	}
	return placeUnique(names, base, func(name string) error {
		err := renameatNoReplace(int(from), fromName, int(d), name)
		if errors.Is(err, unix.EEXIST) {
			return errNameTaken
		}
		return err
	})
}

// statName returns the identity of the entry name in d, not following a
// link, and whether it is a regular file.
func (d dirFd) statName(name string) (fileID, bool, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(int(d), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fileID{}, false, err
	}
	id := fileID{Ino: uint64(st.Ino), Size: uint64(st.Size), MTime: st.Mtim.Nano()}
	return id, st.Mode&unix.S_IFMT == unix.S_IFREG, nil
}

// renameOver moves from/fromName into d as name, replacing what is there
// in one step: a reader sees the old file or the new one, never neither.
func (d dirFd) renameOver(from dirFd, fromName, name string) error {
	return unix.Renameat(int(from), fromName, int(d), name)
}

// sync fsyncs the folder.
func (d dirFd) sync() error { return unix.Fsync(int(d)) }
