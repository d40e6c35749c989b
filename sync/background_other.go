//go:build !linux

package sync

// background does nothing where threads have no priority of their own.
func background() {}
