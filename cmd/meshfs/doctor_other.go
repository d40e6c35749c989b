//go:build !linux

package main

// localChecks are the checks that need no running node. Outside Linux
// there is no FUSE mount to check (fs.Available always fails there), and
// plain-folder mode's watch limits (kqueue's open files on macOS) differ
// per system and are not checked.
func localChecks() []finding {
	return []finding{warned("fuse", "FUSE mounts need Linux", "use meshfs mount --no-fuse for a plain folder")}
}
