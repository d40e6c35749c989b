package sync

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate does nothing on macOS: APFS has no unwritten extents to
// gain from, and a full disk is still found by the writes themselves.
func preallocate(*os.File, int64, int64) (bool, error) { return false, nil }

// punchHole is not done on macOS (F_PUNCHHOLE exists, but nobody here can
// test it): a zero block over old bytes is written as zeros.
func punchHole(*os.File, int64, int64) error { return errors.ErrUnsupported }

// renameNoReplace renames oldpath to newpath, failing with an error that
// matches fs.ErrExist when newpath exists: a delivered file never replaces
// one the user has. RENAME_EXCL is macOS's RENAME_NOREPLACE.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.RenamexNp(oldpath, newpath, unix.RENAME_EXCL)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

// renameatNoReplace renames fromName in the folder from to toName in the
// folder to, failing with EEXIST when toName exists.
func renameatNoReplace(from int, fromName string, to int, toName string) error {
	return unix.RenameatxNp(from, fromName, to, toName, unix.RENAME_EXCL)
}
