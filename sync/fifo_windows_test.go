package sync

// mkfifo does nothing: Windows has no FIFOs in the filesystem, so there is
// no such special file for the outbox to skip.
func mkfifo(string) error { return nil }

// mknull does nothing: Windows has no device files in the filesystem.
func mknull(string) error { return nil }
