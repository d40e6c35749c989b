package sync

import (
	"cmp"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/mesh"
)

// Delivery states persisted in a record.
const (
	stateQueued   = "queued"   // to be offered when the peer is connected
	stateRefused  = "refused"  // refused for now (NOSPACE, BUSY, IO): retried
	stateRejected = "rejected" // refused for good (NAME, TOOBIG, QUOTA)
	stateVerified = "verified" // the peer ACKed: it has the file in place
)

// outRecord is one outgoing transfer: one outbox file version and its
// delivery state for each member. Stored in StateDir/outgoing/<id>.json.
type outRecord struct {
	ID       transferID           `json:"id"`
	Rel      string               `json:"rel"` // path under outbox/, '/'-separated
	Ident    identity             `json:"identity"`
	Manifest manifest             `json:"manifest"`
	Created  time.Time            `json:"created"`
	Seq      uint64               `json:"seq"`   // creation order
	Peers    map[string]*delivery `json:"peers"` // key: full peer ID

	// Guarded by Engine.mu.
	cancelled bool          // removed or rewritten; senders stop at the next block
	stale     bool          // stored with another block hash: hash the file again
	stream    *streamHashes // block hashes so far, while Manifest has none (stream.go)
}

// delivery is the state of one record for one member.
type delivery struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	Name   string `json:"name"` // display name when the record was made

	// In memory only, guarded by Engine.mu.
	owner   *peerConn // the sender that has it in flight; nil when idle
	phase   string    // "offered", "sending", "verifying" while owned
	sent    int64     // bytes sent in the current attempt
	retryAt time.Time // when a refused delivery is offered again
	started time.Time // when the current attempt began
}

// jobKind says what the outbox loop should do.
type jobKind int

const (
	jobClosed      jobKind = iota // an outbox path was closed or renamed in
	jobRemoved                    // an outbox path (file or folder) was deleted
	jobPeerRemoved                // a member was revoked
	jobFinish                     // a record may be fully delivered
)

type job struct {
	kind   jobKind
	rel    string
	peer   mesh.PeerID
	id     transferID
	rescan bool // jobClosed from the startup rescan, not from a writer
}

// jobQueue never blocks the caller (FUSE callbacks push here); repeated
// closes of the same path are coalesced, so it grows only with distinct
// paths.
type jobQueue struct {
	mu     sync.Mutex
	jobs   []job
	closed map[string]bool
	signal chan struct{}
}

func (q *jobQueue) init() {
	q.closed = map[string]bool{}
	q.signal = make(chan struct{}, 1)
}

func (q *jobQueue) push(j job) {
	q.mu.Lock()
	if j.kind != jobClosed || !q.closed[j.rel] {
		q.jobs = append(q.jobs, j)
		if j.kind == jobClosed {
			q.closed[j.rel] = true
		}
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *jobQueue) take() []job {
	q.mu.Lock()
	defer q.mu.Unlock()
	jobs := q.jobs
	q.jobs = nil
	clear(q.closed)
	return jobs
}

// OutboxClosed tells the engine that rel (relative to outbox/, a file or a
// folder renamed in) was closed by its last writer. It never blocks.
func (e *Engine) OutboxClosed(rel string) { e.jobs.push(job{kind: jobClosed, rel: rel}) }

// OutboxRemoved tells the engine that rel (file or folder) was deleted
// from outbox/: its transfers are cancelled. It never blocks.
func (e *Engine) OutboxRemoved(rel string) { e.jobs.push(job{kind: jobRemoved, rel: rel}) }

// outboxLoop runs the jobs: hashing, cancelling, finishing.
func (e *Engine) outboxLoop() {
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.jobs.signal:
		}
		for _, j := range e.jobs.take() {
			if e.ctx.Err() != nil {
				return
			}
			e.runJob(j)
		}
	}
}

func (e *Engine) runJob(j job) {
	switch j.kind {
	case jobClosed:
		e.outboxClosed(j.rel, j.rescan)
	case jobRemoved:
		if rel, ok := cleanRel(j.rel); ok {
			e.cancelRel(rel, true)
		}
	case jobPeerRemoved:
		e.dropPeerFromRecords(j.peer)
	case jobFinish:
		e.finishRecord(j.id)
	}
}

// cleanRel makes rel a clean '/'-separated path inside outbox/.
func cleanRel(rel string) (string, bool) {
	rel = path.Clean(strings.TrimPrefix(filepath.ToSlash(rel), "/"))
	if rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return rel, true
}

// outboxClosed handles one closed path: a file, or a folder to walk.
// rescan says it comes from the startup rescan.
func (e *Engine) outboxClosed(rel string, rescan bool) {
	rel, ok := cleanRel(rel)
	if !ok {
		e.log.Warn("outbox path outside outbox", "path", rel)
		return
	}
	abs := filepath.Join(e.outboxDir, filepath.FromSlash(rel))
	fi, err := os.Lstat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		e.cancelRel(rel, false)
	case err != nil:
		e.log.Warn("outbox file unreadable", "path", rel, "err", err)
	case fi.IsDir():
		e.walkOutbox(abs, rescan)
	default:
		e.outboxFile(rel, abs, fi, rescan)
	}
}

// walkOutbox queues every file under dir (a folder renamed into outbox/,
// or the whole outbox/ when rescan).
func (e *Engine) walkOutbox(dir string, rescan bool) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if rel, err := filepath.Rel(e.outboxDir, p); err == nil {
			e.jobs.push(job{kind: jobClosed, rel: filepath.ToSlash(rel), rescan: rescan})
		}
		return nil
	})
}

// outboxFile turns one closed outbox file into a transfer.
func (e *Engine) outboxFile(rel, abs string, fi os.FileInfo, rescan bool) {
	if ignoredOutboxName(rel) {
		e.log.Debug("outbox name ignored", "path", rel)
		return
	}
	if !fi.Mode().IsRegular() {
		e.log.Warn("outbox entry is not a regular file", "path", rel, "mode", fi.Mode().String())
		return
	}
	old := e.recordFor(rel)
	if incomplete(abs) {
		e.skipIncomplete(rel, old, fi, rescan)
		return
	}
	if old != nil && !old.stale && old.Ident.sameFile(identityOf(fi)) {
		return
	}
	if _, err := validatePath(rel); err != nil {
		e.log.Warn("outbox name not portable", "path", rel, "err", err)
		return
	}
	if fi.Size() > e.cfg.MaxFileSize {
		e.log.Warn("outbox file too big", "path", rel, "bytes", fi.Size(), "max", e.cfg.MaxFileSize)
		return
	}
	rec, err := e.hashOutbox(rel, abs)
	if errors.Is(err, errChanged) {
		e.log.Debug("outbox file changed while hashing", "path", rel)
		return
	}
	if err != nil {
		e.log.Warn("outbox file unreadable", "path", rel, "err", err)
		return
	}
	if old != nil && old.stale {
		keepVerified(rec, old)
	}
	e.cancelRel(rel, false)
	e.addRecord(rec)
}

// keepVerified carries the members who already verified an older
// record of the same file over to its new record: they are not sent it
// again.
func keepVerified(rec, old *outRecord) {
	for id, d := range old.Peers {
		if d.State == stateVerified {
			rec.Peers[id] = &delivery{State: stateVerified, Name: d.Name}
		}
	}
}

// hashOutbox reads the file once and builds a record with a delivery for
// every member known now, connected or not.
func (e *Engine) hashOutbox(rel, abs string) (*outRecord, error) {
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	bs := chooseBlockSize(fi.Size(), e.cfg.BlockSize)
	m, ident := manifest{Hash: blockHashName, Size: fi.Size(), BlockSize: bs}, identityOf(fi)
	if fi.Size() < e.cfg.StreamMinSize { // larger files are hashed as they are sent
		if m, ident, err = hashFile(e.ctx, f, bs); err != nil {
			return nil, err
		}
	}
	rec := &outRecord{Rel: rel, Ident: ident, Manifest: m, Created: time.Now(), Peers: map[string]*delivery{}}
	rand.Read(rec.ID[:])
	for _, p := range e.transport().Peers() {
		rec.Peers[p.ID.String()] = &delivery{State: stateQueued, Name: safeName(p.Name)}
	}
	return rec, nil
}

// addRecord persists a new record and wakes the senders.
func (e *Engine) addRecord(rec *outRecord) {
	e.mu.Lock()
	e.outSeq++
	rec.Seq = e.outSeq
	e.mu.Unlock()
	if err := e.saveRecord(rec); err != nil {
		e.log.Error("delivery record not saved", "path", rec.Rel, "err", err)
		return
	}
	e.mu.Lock()
	e.out[rec.ID] = rec
	e.outOrder = append(e.outOrder, rec)
	e.mu.Unlock()
	e.log.Info("file queued", "path", rec.Rel, "bytes", rec.Ident.Size, "members", len(rec.Peers), "id", rec.ID.String())
	e.jobs.push(job{kind: jobFinish, id: rec.ID})
	e.wakeSenders()
}

// recordFor returns the live record for rel, if any.
func (e *Engine) recordFor(rel string) *outRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.recordForLocked(rel)
}

// recordForLocked is recordFor with e.mu held.
func (e *Engine) recordForLocked(rel string) *outRecord {
	for _, r := range e.out {
		if r.Rel == rel {
			return r
		}
	}
	return nil
}

// recordPath is where a record is stored.
func (e *Engine) recordPath(id transferID) string {
	return filepath.Join(e.outgoingDir, id.String()+".json")
}

// saveRecord persists a record (a snapshot taken under the lock).
func (e *Engine) saveRecord(rec *outRecord) error {
	e.mu.Lock()
	snap := *rec
	snap.Peers = make(map[string]*delivery, len(rec.Peers))
	for k, d := range rec.Peers {
		dc := delivery{State: d.State, Reason: d.Reason, Name: d.Name}
		snap.Peers[k] = &dc
	}
	cancelled := rec.cancelled
	e.mu.Unlock()
	if cancelled {
		return nil
	}
	return atomicfile.WriteJSON(e.recordPath(rec.ID), &snap)
}

// cancelRel cancels the record for rel, or with subtree every record at or
// below rel. Receivers are not told: they garbage-collect their partials.
func (e *Engine) cancelRel(rel string, subtree bool) {
	e.mu.Lock()
	var gone []*outRecord
	for _, r := range e.out {
		if r.Rel == rel || subtree && strings.HasPrefix(r.Rel, rel+"/") {
			gone = append(gone, r)
		}
	}
	for _, r := range gone {
		e.dropRecordLocked(r)
	}
	e.mu.Unlock()
	for _, r := range gone {
		e.log.Info("transfer cancelled", "path", r.Rel, "id", r.ID.String())
		e.removeRecordFile(r.ID)
	}
}

// dropRecordLocked forgets a record in memory.
func (e *Engine) dropRecordLocked(r *outRecord) {
	r.cancelled = true
	delete(e.out, r.ID)
	e.outOrder = slices.DeleteFunc(e.outOrder, func(x *outRecord) bool { return x == r })
}

func (e *Engine) removeRecordFile(id transferID) {
	if err := os.Remove(e.recordPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		e.log.Warn("delivery record not removed", "id", id.String(), "err", err)
	}
}

// dropPeerFromRecords forgets a revoked member in every record.
func (e *Engine) dropPeerFromRecords(peer mesh.PeerID) {
	key := peer.String()
	e.mu.Lock()
	var touched []*outRecord
	for _, r := range e.out {
		if _, ok := r.Peers[key]; ok {
			delete(r.Peers, key)
			touched = append(touched, r)
		}
	}
	e.mu.Unlock()
	for _, r := range touched {
		if err := e.saveRecord(r); err != nil {
			e.log.Warn("delivery record not saved", "path", r.Rel, "err", err)
		}
		e.finishRecord(r.ID)
	}
}

// finishRecord moves a fully delivered file to sent/ and deletes its record.
func (e *Engine) finishRecord(id transferID) {
	e.mu.Lock()
	rec, ok := e.out[id]
	if !ok || !allVerified(rec) {
		e.mu.Unlock()
		return
	}
	e.dropRecordLocked(rec)
	e.mu.Unlock()
	abs := filepath.Join(e.outboxDir, filepath.FromSlash(rec.Rel))
	if fi, err := os.Lstat(abs); err == nil && identityOf(fi).sameFile(rec.Ident) {
		if err := e.moveToSent(rec.Rel, abs); err != nil {
			e.log.Warn("delivered file not moved to sent", "path", rec.Rel, "err", err)
		} else {
			e.log.Info("file delivered to every member", "path", rec.Rel, "members", len(rec.Peers))
		}
	}
	e.removeRecordFile(rec.ID)
}

// allVerified reports whether every member verified the record.
func allVerified(rec *outRecord) bool {
	for _, d := range rec.Peers {
		if d.State != stateVerified {
			return false
		}
	}
	return true
}

// moveToSent renames outbox/rel to sent/rel without replacing anything
// ("name (1).ext" on a clash) and removes emptied outbox folders.
func (e *Engine) moveToSent(rel, abs string) error {
	dstDir := filepath.Join(e.sentDir, filepath.FromSlash(path.Dir(rel)))
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
		e.changed(path.Join("outbox", rel))
		e.changed(path.Join("sent", path.Dir(rel), numberedName(base, n)))
		break
	}
	for dir := filepath.Dir(abs); dir != e.outboxDir && strings.HasPrefix(dir, e.outboxDir); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
		if r, err := filepath.Rel(e.outboxDir, dir); err == nil {
			e.changed(path.Join("outbox", filepath.ToSlash(r)))
		}
	}
	return atomicfile.SyncDir(dstDir)
}

// loadRecords reads every stored record at New.
func (e *Engine) loadRecords() error {
	entries, err := os.ReadDir(e.outgoingDir)
	if err != nil {
		return err
	}
	for _, ent := range entries {
		if !strings.HasSuffix(ent.Name(), ".json") || strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		rec := &outRecord{}
		if err := atomicfile.ReadJSON(filepath.Join(e.outgoingDir, ent.Name()), rec); err != nil || rec.Peers == nil {
			e.log.Warn("delivery record unreadable", "file", ent.Name(), "err", err)
			continue
		}
		if rec.Manifest.Hash != blockHashName {
			e.log.Info("delivery record from an older version: the file is hashed again", "path", rec.Rel)
			rec.stale = true
		}
		e.out[rec.ID] = rec
		e.outOrder = append(e.outOrder, rec)
		e.outSeq = max(e.outSeq, rec.Seq)
	}
	slices.SortFunc(e.outOrder, func(a, b *outRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	return nil
}

// rescanOutbox queues every outbox file and every record's path: files
// closed while the node was down are sent, changed or deleted ones are
// replaced or cancelled.
func (e *Engine) rescanOutbox() {
	e.mu.Lock()
	for _, r := range e.outOrder {
		e.jobs.push(job{kind: jobClosed, rel: r.Rel, rescan: true})
		e.jobs.push(job{kind: jobFinish, id: r.ID})
	}
	e.mu.Unlock()
	e.walkOutbox(e.outboxDir, true)
}

// requeueRefusedLocked makes a reconnecting peer's refused deliveries
// eligible again at once.
func (e *Engine) requeueRefusedLocked(peer mesh.PeerID) {
	key := peer.String()
	for _, r := range e.out {
		if d := r.Peers[key]; d != nil && d.State == stateRefused {
			d.State = stateQueued
		}
	}
}
