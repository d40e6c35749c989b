//go:build linux || darwin

package sync

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// symlink makes the link name in d pointing at target.
func (d dirFd) symlink(target, name string) error {
	if err := unix.Symlinkat(target, int(d), name); err != nil {
		return fmt.Errorf("symlink %s: %w", name, err)
	}
	return nil
}

// remove deletes the non-folder entry name in d, if there.
func (d dirFd) remove(name string) { unix.Unlinkat(int(d), name, 0) }

// chmodPlaced sets the mode of the file at inbox/<comps...> if it is still
// the file want: walked to with *at calls that follow no link, opened
// without following one, and checked on the open file itself.
func (ib *inbound) chmodPlaced(comps []string, want fileID, mode os.FileMode) error {
	dir, err := openDir(ib.inboxDir)
	if err != nil {
		return err
	}
	for _, c := range comps[:len(comps)-1] {
		fd, err := unix.Openat(int(dir), c, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		dir.close()
		if err != nil {
			return fmt.Errorf("open folder %s: %w", c, err)
		}
		dir = dirFd(fd)
	}
	defer dir.close()
	name := comps[len(comps)-1]
	fd, err := unix.Openat(int(dir), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	got := fileID{Ino: uint64(st.Ino), Size: uint64(st.Size), MTime: st.Mtim.Nano()}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || got != want {
		return errors.New("the file was changed since it was placed")
	}
	return unix.Fchmod(fd, uint32(mode.Perm()))
}
