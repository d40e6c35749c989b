//go:build unix

package main

import "golang.org/x/sys/unix"

// diskFree is the bytes available to this user on the filesystem holding path.
func diskFree(path string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil // the fields' types differ by platform
}
