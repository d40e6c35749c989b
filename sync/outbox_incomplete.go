package sync

import (
	"os"

	"golang.org/x/sys/unix"
)

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

// skipIncomplete leaves a marked file alone: it is sent when a writer
// completes it (the mark is cleared first). A record for an older version
// of rel is cancelled, since that content is gone. The startup rescan tells
// the user; a file reported while a new writer has it open is routine.
func (e *Engine) skipIncomplete(rel string, old *outRecord, fi os.FileInfo, rescan bool) {
	if old != nil && !old.Ident.sameFile(identityOf(fi)) {
		e.cancelRel(rel, false)
	}
	if rescan {
		e.log.Warn("outbox file was still being written when meshfs stopped; copy it again to send it", "path", rel)
		return
	}
	e.log.Debug("outbox file still open for writing", "path", rel)
}
