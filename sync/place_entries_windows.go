package sync

import "os"

// symlink refuses: making a symbolic link on Windows needs a privilege or
// developer mode, and a link's '/'-separated target would need rewriting.
// The member is told, once, that this machine does not hold links.
func (d dirFd) symlink(target, name string) error {
	return refused(rejectKind, "symbolic links are not placed on Windows")
}

// remove has nothing to delete: no link was made.
func (d dirFd) remove(name string) {}

// chmodPlaced leaves the file as it is: Windows keeps no permission bits
// for a received file beyond read-only, which meshfs never sets.
func (ib *inbound) chmodPlaced(comps []string, want fileID, mode os.FileMode) error { return nil }
