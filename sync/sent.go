package sync

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
)

// When a file goes from outbox/ to sent/: once every member has it, and
// nothing at its top-level name (the file, or the folder it is in) changed
// for TreeSettle. A program still writing there (git clone, tar -x, an
// editor, a chmod right after cp) must find what it wrote a moment ago.
// The files of a folder move together; folders stay. The same timer
// releases held names (dot names, empty folders) after their DotHold.

// releaseHeld queues the held files whose hold is over.
func (o *outbound) releaseHeld(now time.Time) {
	for rel, due := range o.held {
		if !now.Before(due) {
			delete(o.held, rel)
			o.outboxClosed(rel, false, true)
		}
	}
}

// armHold sets t to fire when the earliest hold or tree settle ends.
func (o *outbound) armHold(t *time.Timer) {
	due := slices.Collect(maps.Values(o.held))
	for top := range o.settling {
		due = append(due, o.touched[top].Add(o.cfg.TreeSettle))
	}
	if len(due) > 0 {
		t.Reset(time.Until(slices.MinFunc(due, time.Time.Compare)))
	}
}

// touch notes a change at or below a top-level outbox name.
func (o *outbound) touch(rel string) {
	top := topOf(filepath.ToSlash(rel))
	now := time.Now()
	o.touched[top] = now
	if len(o.touched) > maxTouched { // forget folders long quiet and not waiting to move
		for t, at := range o.touched {
			if !o.settling[t] && now.Sub(at) > o.cfg.TreeSettle {
				delete(o.touched, t)
			}
		}
	}
}

// maxTouched bounds the folders touch remembers before it forgets quiet ones.
const maxTouched = 1024

// settleTrees moves the delivered files of every top-level name that is
// fully delivered and has not changed for TreeSettle.
func (o *outbound) settleTrees(now time.Time) {
	for top := range o.settling {
		if now.Before(o.touched[top].Add(o.cfg.TreeSettle)) {
			continue
		}
		if o.writing(top) {
			o.touched[top] = now // asked again after another TreeSettle
			continue
		}
		delete(o.settling, top)
		recs, done := o.deliveredUnder(top)
		if !done {
			continue // the last delivery to finish brings the folder back
		}
		delete(o.touched, top)
		for _, rec := range recs {
			o.moveDelivered(rec)
		}
	}
}

// deliveredUnder returns the records at or below the top-level name top,
// and whether every member has every one of them.
func (o *outbound) deliveredUnder(top string) ([]*outRecord, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var recs []*outRecord
	for _, r := range o.order {
		if r.relay() || r.Rel != top && !strings.HasPrefix(r.Rel, top+"/") {
			continue
		}
		if !allVerified(r) {
			return nil, false
		}
		recs = append(recs, r)
	}
	return recs, true
}

// finishRecord marks the top-level name of a fully delivered record as
// settling: settleTrees moves it to sent/ once it stayed unchanged.
func (o *outbound) finishRecord(id transferID) {
	o.mu.Lock()
	rec, ok := o.records[id]
	done := ok && allVerified(rec)
	if ok {
		clearFetched(rec) // every verification pushes this job
	}
	o.mu.Unlock()
	if !done {
		return
	}
	if rec.relay() { // every member has it: nothing more to pass on
		o.dropRelay(rec)
		return
	}
	top := topOf(rec.Rel)
	if _, known := o.touched[top]; !known {
		o.touched[top] = time.Now()
	}
	o.settling[top] = true
}

// moveDelivered moves a fully delivered file to sent/ and deletes its
// record.
func (o *outbound) moveDelivered(rec *outRecord) {
	o.mu.Lock()
	if o.records[rec.ID] != rec {
		o.mu.Unlock()
		return
	}
	o.dropRecordLocked(rec)
	o.mu.Unlock()
	abs := o.diskPath(rec.Rel)
	if fi, err := os.Lstat(abs); err == nil && rec.Type != entryFolder && versionOf(fi).sameFile(rec.identity()) {
		if err := o.moveToSent(rec.Rel, abs); err != nil {
			o.log.Warn("delivered file left in outbox/: not moved to sent/", "path", rec.Rel, "err", err,
				"fix", "check permissions of sent/; every member has the file, so you may move it yourself")
		} else {
			o.log.Info(rec.Type.String()+" delivered to every member", "path", rec.Rel, "members", len(rec.Peers))
		}
	}
	o.removeRecordFile(rec.ID)
}

// allVerified reports whether every member verified the record.
func allVerified(rec *outRecord) bool {
	if d := rec.Peers[rec.To]; rec.To != "" && d != nil && delivered(rec, d) {
		return true // a private file's own member has it: the others only carried it
	}
	for _, d := range rec.Peers {
		if !delivered(rec, d) {
			return false
		}
	}
	return true
}

// moveToSent renames outbox/rel to sent/rel without replacing anything
// ("name (1).ext" on a clash). Folders stay in outbox/: they are the
// user's, and an editor saving the next version into one must find it.
func (o *outbound) moveToSent(rel, abs string) error {
	dstDir := filepath.Join(o.sentDir, filepath.FromSlash(path.Dir(rel)))
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return err
	}
	base := path.Base(rel)
	for n := 0; ; n++ {
		dst := filepath.Join(dstDir, numberedName(base, n))
		err := renameNoReplace(abs, dst)
		if errors.Is(err, fs.ErrExist) && n < maxNumbered {
			continue
		}
		if err != nil {
			return err
		}
		o.changed(treeRel(rel))
		o.changed(path.Join("sent", path.Dir(strings.TrimPrefix(rel, "/")), numberedName(base, n)))
		break
	}
	return atomicfile.SyncDir(dstDir)
}
