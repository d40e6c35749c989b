//go:build linux || darwin

package sync

import "golang.org/x/sys/unix"

// xattrIncomplete is the extended attribute the FUSE outbox sets on a file
// while it is open for writing and removes on its last close, before it
// reports the file (the fs package sets it under the same name). A file
// still marked was cut short: the node stopped before its writer finished.
const xattrIncomplete = "user.meshfs.incomplete"

// incomplete reports whether the outbox file abs carries the
// unfinished-writer mark. Without user xattrs (or in plain-folder mode,
// where nobody sets it) nothing is marked.
func incomplete(abs string) bool {
	_, err := unix.Lgetxattr(abs, xattrIncomplete, nil)
	return err == nil
}

// privateXattr marks a file placed from a private box (private_files.go):
// its value is the author's name.
const privateXattr = "user.meshfs.private"

// markPrivate sets the private mark on a placed file.
func markPrivate(abs, author string) error {
	return unix.Setxattr(abs, privateXattr, []byte(author), 0)
}
