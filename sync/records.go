package sync

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/mesh"
)

// Delivery records: one per outbox file version, kept in memory in creation
// order and on disk in StateDir/outgoing/<id>.json, so queued files survive
// restarts of either side.

// valid reports whether a delivery read from disk holds a known state.
func (d *delivery) valid() bool {
	return d != nil && (d.State == StateQueued || d.State == StateRefused || d.State == StateVerified)
}

// valid reports whether a record read from disk is one this version wrote.
func (r *outRecord) valid() bool {
	if r.Peers == nil || r.Manifest.Hash != blockHashName {
		return false
	}
	for _, d := range r.Peers {
		if !d.valid() {
			return false
		}
	}
	return true
}

// upgrade fills what records written before sync protocol 2 lack: the
// current mode is the one hashed, and a member that verified the file has
// it with that mode.
func (r *outRecord) upgrade() {
	if r.Mode == 0 {
		r.Mode = r.Version.Mode & 0o777
	}
	for _, d := range r.Peers {
		if d.Mode == 0 && d.State == StateVerified {
			d.Mode = r.Mode
		}
	}
}

// recordFor returns the live record for rel, if any.
func (o *outbound) recordFor(rel string) *outRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.recordForLocked(rel)
}

// recordForLocked is recordFor with o.mu held.
func (o *outbound) recordForLocked(rel string) *outRecord {
	for _, r := range o.records {
		if r.Rel == rel && !r.relay() {
			return r
		}
	}
	return nil
}

// recordPath is where a record is stored.
func (o *outbound) recordPath(id transferID) string {
	return filepath.Join(o.outgoingDir, id.String()+".json")
}

// saveRecord persists a record (a snapshot taken under the lock).
func (o *outbound) saveRecord(rec *outRecord) error {
	o.mu.Lock()
	snap := *rec
	snap.Peers = make(map[string]*delivery, len(rec.Peers))
	for k, d := range rec.Peers {
		dc := delivery{State: d.State, Final: d.Final, Reason: d.Reason, Name: d.Name, Mode: d.Mode}
		snap.Peers[k] = &dc
	}
	skip := rec.cancelled || rec.detached
	o.mu.Unlock()
	if skip {
		return nil
	}
	return atomicfile.WriteJSON(o.recordPath(rec.ID), &snap)
}

// cancelRel cancels the record for rel, or with subtree every record at or
// below rel. Receivers are not told: they garbage-collect their partials.
func (o *outbound) cancelRel(rel string, subtree bool) {
	o.mu.Lock()
	for k := range o.unsent {
		if k == rel || subtree && strings.HasPrefix(k, rel+"/") {
			delete(o.unsent, k)
		}
	}
	var gone []*outRecord
	for _, r := range o.records {
		if r.relay() {
			continue // not in outbox/
		}
		if r.Rel == rel || subtree && strings.HasPrefix(r.Rel, rel+"/") {
			gone = append(gone, r)
		}
	}
	for _, r := range gone {
		o.dropRecordLocked(r)
	}
	o.mu.Unlock()
	for _, r := range gone {
		o.log.Info("transfer cancelled", "path", r.Rel, "id", r.ID.String())
		o.removeRecordFile(r.ID)
	}
}

// dropRecordLocked forgets a record in memory.
func (o *outbound) dropRecordLocked(r *outRecord) {
	if r.Spool != "" { // a private file's box: sealed again if it is sent again
		os.Remove(filepath.Join(o.sealedDir, r.Spool))
	}
	r.cancelled = true
	delete(o.records, r.ID)
	o.order = slices.DeleteFunc(o.order, func(x *outRecord) bool { return x == r })
}

func (o *outbound) removeRecordFile(id transferID) {
	if err := os.Remove(o.recordPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		o.log.Warn("finished delivery state not removed", "id", id.String(), "err", err, "fix", fixState)
	}
}

// dropPeerFromRecords forgets a revoked member in every record.
func (o *outbound) dropPeerFromRecords(peer mesh.PeerID) {
	key := peer.String()
	o.mu.Lock()
	var touched []*outRecord
	var private []*outRecord
	for _, r := range o.records {
		if r.To == key && !r.relay() {
			private = append(private, r)
			continue
		}
		if _, ok := r.Peers[key]; ok {
			delete(r.Peers, key)
			touched = append(touched, r)
		}
	}
	o.mu.Unlock()
	for _, r := range private { // its member is gone: the file stays in to/, saying why
		o.cancelRel(r.Rel, false)
		o.setUnsent(r.Rel, "not sent: its member was removed from the mesh", true)
	}
	for _, r := range touched {
		if err := o.saveRecord(r); err != nil {
			o.log.Warn("delivery state not saved; the file may be sent again after a restart", "path", r.Rel, "err", err,
				"fix", fixState)
		}
		o.finishRecord(r.ID)
	}
}

// load reads every stored record at New.
func (o *outbound) load() error {
	entries, err := os.ReadDir(o.outgoingDir)
	if err != nil {
		return err
	}
	for _, ent := range entries {
		if !strings.HasSuffix(ent.Name(), ".json") || strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		rec := &outRecord{}
		path := filepath.Join(o.outgoingDir, ent.Name())
		err := atomicfile.ReadJSON(path, rec)
		if err == nil && !rec.valid() {
			err = errors.New("not a delivery record of this version")
		}
		if err != nil {
			// The outbox file, if still there, is queued again by the
			// startup rescan: nothing the user put in outbox/ is lost.
			o.log.Warn("delivery state unreadable; its file is sent again", "file", ent.Name(), "err", err,
				"fix", "nothing: the file is sent again if it is still in outbox/")
			os.Remove(path)
			continue
		}
		if rec.relay() && time.Since(rec.Created) > RelayTTL {
			os.Remove(path)
			o.dropCarried(rec)
			continue
		}
		rec.upgrade()
		o.records[rec.ID] = rec
		o.order = append(o.order, rec)
		o.seq = max(o.seq, rec.Seq)
	}
	slices.SortFunc(o.order, func(a, b *outRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	return nil
}

// rescan queues every outbox file and every record's path: files
// closed while the node was down are sent, changed or deleted ones are
// replaced or cancelled.
func (o *outbound) rescan() {
	o.mu.Lock()
	for _, r := range o.order {
		if !r.relay() {
			o.jobs.push(job{kind: jobClosed, rel: r.Rel, rescan: true})
		}
		o.jobs.push(job{kind: jobFinish, id: r.ID})
	}
	o.mu.Unlock()
	o.walkOutbox(o.outboxDir, true)
	if _, err := os.Stat(o.toDir); err == nil {
		o.walkOutbox(o.toDir, true)
	}
}

// requeueRefused makes a reconnecting peer's refused deliveries eligible
// again at once.
func (o *outbound) requeueRefused(peer mesh.PeerID) {
	key := peer.String()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.records {
		if d := r.Peers[key]; d != nil && d.retryable() {
			d.State = StateQueued
		}
	}
}
