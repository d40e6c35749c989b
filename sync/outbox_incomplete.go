package sync

import "os"

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
