package sync

// incomplete reports false: only the FUSE outbox (Linux) sets the
// unfinished-writer mark, and Windows has no extended attributes to carry
// it. The consequence: a file a writer left unfinished when the node
// stopped is sent as it is on the startup rescan, as in plain-folder mode
// on any system.
func incomplete(string) bool { return false }

// markPrivate does nothing: Windows has no extended attributes, and the
// chat event line says the file was private.
func markPrivate(string, string) error { return nil }
