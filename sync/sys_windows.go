package sync

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/windows"
)

// preallocate does nothing on Windows: NTFS zero-fills what a later write
// skips over anyway, and a full disk is found by the writes themselves.
func preallocate(*os.File, int64, int64) (bool, error) { return false, nil }

// punchHole is not done on Windows: partials are not marked sparse
// (FSCTL_SET_SPARSE), so a zero block over old bytes is written as zeros.
func punchHole(*os.File, int64, int64) error { return errors.ErrUnsupported }

// renameNoReplace renames oldpath to newpath, failing with an error that
// matches fs.ErrExist when newpath exists: a delivered file never replaces
// one the user has. MoveFileEx without MOVEFILE_REPLACE_EXISTING refuses
// an existing target (ERROR_ALREADY_EXISTS, which matches fs.ErrExist).
func renameNoReplace(oldpath, newpath string) error {
	from, err := windows.UTF16PtrFromString(oldpath)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	to, err := windows.UTF16PtrFromString(newpath)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	if err := windows.MoveFileEx(from, to, 0); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}

// isNoSpace reports a full disk or an exhausted quota. syscall.ENOSPC is
// Go's portable name for it, which wrappers (and the tests) may return.
func isNoSpace(err error) bool {
	return errors.Is(err, windows.ERROR_DISK_FULL) || errors.Is(err, windows.ERROR_HANDLE_DISK_FULL) ||
		errors.Is(err, windows.ERROR_DISK_QUOTA_EXCEEDED) || errors.Is(err, syscall.ENOSPC)
}

// statfsFree returns the bytes available to us (quotas included) and the
// volume's size.
func statfsFree(path string) (free, total uint64, err error) {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	var totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &free, &total, &totalFree); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return free, total, nil
}

// inodeOf returns what stands in for the inode on Windows, where a
// FileInfo carries no file index: the creation time. A file replaced under
// the same name then differs even with the same size and mtime, unless
// NTFS tunnelling gave it the old file's creation time.
func inodeOf(fi os.FileInfo) uint64 {
	if d, ok := fi.Sys().(*syscall.Win32FileAttributeData); ok {
		return uint64(d.CreationTime.Nanoseconds())
	}
	return 0
}
