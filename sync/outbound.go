package sync

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/internal/present"
	"github.com/meshfs/meshfs/mesh"
)

// DeliveryState is where one outbox file stands with one member. These
// words, and the phases below, are what the user.meshfs.* attributes,
// `meshfs status` and the peers file show.
type DeliveryState string

// The states a delivery record keeps on disk.
const (
	StateQueued   DeliveryState = "queued"   // to be offered when the member is connected
	StateRefused  DeliveryState = "refused"  // the member said no (Reason); retried unless Final
	StateVerified DeliveryState = "verified" // the member has the file verified and in place
)

// The phases of a delivery a sender is working on, kept in memory only.
const (
	PhaseOffered   DeliveryState = "offered"
	PhaseSending   DeliveryState = "sending"
	PhaseVerifying DeliveryState = "verifying"
)

// outRecord is one outgoing transfer: one outbox file version and its
// delivery state for each member. Stored in StateDir/outgoing/<id>.json.
type outRecord struct {
	ID       transferID           `json:"id"`
	Rel      string               `json:"rel"`      // path under outbox/, '/'-separated
	Version  fileVersion          `json:"identity"` // the name on disk since the first format
	Manifest manifest             `json:"manifest"`
	Created  time.Time            `json:"created"`
	Seq      uint64               `json:"seq"`   // creation order
	Peers    map[string]*delivery `json:"peers"` // key: full peer ID

	// Guarded by outbound.mu.
	cancelled bool          // removed or rewritten; senders stop at the next block
	stream    *streamHashes // block hashes so far, while Manifest has none (send.go)
}

// delivery is the state of one record for one member.
type delivery struct {
	State  DeliveryState `json:"state"`
	Final  bool          `json:"final,omitempty"` // refused until the file changes (name, size, quota)
	Reason string        `json:"reason,omitempty"`
	Name   string        `json:"name"` // display name when the record was made

	// In memory only, guarded by outbound.mu.
	owner   *peerConn     // the sender that has it in flight; nil when idle
	phase   DeliveryState // PhaseOffered, PhaseSending or PhaseVerifying while owned
	sent    int64         // bytes sent in the current attempt
	retryAt time.Time     // when a refused delivery is offered again
	started time.Time     // when the current attempt began
}

// valid reports whether a delivery read from disk holds a known state.
func (d *delivery) valid() bool {
	return d != nil && (d.State == StateQueued || d.State == StateRefused || d.State == StateVerified)
}

// retryable reports whether a refused delivery is offered again.
func (d *delivery) retryable() bool { return d.State == StateRefused && !d.Final }

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

// outbound owns the outgoing side: one delivery record per outbox file
// version, the outbox loop that creates, cancels and finishes them, and
// (through sender) the offers to each member.
type outbound struct {
	*env
	peers *peerSet
	jobs  jobQueue // work for the outbox loop

	// Owned by the loop goroutine.
	held     map[string]time.Time // dot-named files and when their hold ends
	touched  map[string]time.Time // top-level outbox folders and their last change
	settling map[string]bool      // top-level folders with delivered files waiting to move

	mu      sync.Mutex // guards the records and their deliveries
	records map[transferID]*outRecord
	order   []*outRecord      // by creation; cancelled records are skipped
	unsent  map[string]string // outbox paths not sent, and why
	seq     uint64
}

func newOutbound(v *env, peers *peerSet) *outbound {
	o := &outbound{env: v, peers: peers, records: map[transferID]*outRecord{}, held: map[string]time.Time{},
		touched: map[string]time.Time{}, settling: map[string]bool{}, unsent: map[string]string{}}
	o.jobs.init()
	return o
}

// OutboxClosed tells the engine that rel (relative to outbox/, a file or a
// folder renamed in) was closed by its last writer. It never blocks.
func (e *Engine) OutboxClosed(rel string) { e.out.jobs.push(job{kind: jobClosed, rel: rel}) }

// OutboxRemoved tells the engine that rel (file or folder) was deleted
// from outbox/: its transfers are cancelled. It never blocks.
func (e *Engine) OutboxRemoved(rel string) { e.out.jobs.push(job{kind: jobRemoved, rel: rel}) }

// loop runs the jobs: hashing, cancelling, finishing.
func (o *outbound) loop() {
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	defer hold.Stop()
	for {
		select {
		case <-o.ctx.Done():
			return
		case <-o.jobs.signal:
		case <-hold.C:
			o.releaseHeld(time.Now())
			o.settleTrees(time.Now())
		}
		for _, j := range o.jobs.take() {
			if o.ctx.Err() != nil {
				return
			}
			o.runJob(j)
		}
		o.armHold(hold)
	}
}

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

// touch notes a change under outbox/ for its top-level folder.
func (o *outbound) touch(rel string) {
	top, _, _ := strings.Cut(path.Clean(filepath.ToSlash(rel)), "/")
	o.touched[top] = time.Now()
}

// settleTrees moves the delivered files of every top-level folder that is
// fully delivered and has not changed for TreeSettle.
func (o *outbound) settleTrees(now time.Time) {
	for top := range o.settling {
		if now.Before(o.touched[top].Add(o.cfg.TreeSettle)) {
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

// deliveredUnder returns the records below folder top, and whether every
// member verified every one of them.
func (o *outbound) deliveredUnder(top string) ([]*outRecord, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var recs []*outRecord
	for _, r := range o.order {
		if !strings.HasPrefix(r.Rel, top+"/") {
			continue
		}
		if !allVerified(r) {
			return nil, false
		}
		recs = append(recs, r)
	}
	return recs, true
}

func (o *outbound) runJob(j job) {
	switch j.kind {
	case jobClosed:
		o.touch(j.rel)
		o.outboxClosed(j.rel, j.rescan, false)
	case jobRemoved:
		if rel, ok := cleanRel(j.rel); ok {
			o.touch(rel)
			o.cancelRel(rel, true)
		}
	case jobPeerRemoved:
		o.dropPeerFromRecords(j.peer)
	case jobFinish:
		o.finishRecord(j.id)
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
// rescan says it comes from the startup rescan, settled that its hold
// (heldName) is over.
func (o *outbound) outboxClosed(rel string, rescan, settled bool) {
	rel, ok := cleanRel(rel)
	if !ok {
		o.log.Warn("outbox path outside outbox", "path", rel)
		return
	}
	abs := filepath.Join(o.outboxDir, filepath.FromSlash(rel))
	fi, err := os.Lstat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		o.cancelRel(rel, false)
	case err != nil:
		o.log.Warn("outbox file unreadable", "path", rel, "err", err)
	case fi.IsDir():
		o.walkOutbox(abs, rescan)
	default:
		o.outboxFile(rel, abs, fi, rescan, settled)
	}
}

// walkOutbox queues every file under dir (a folder renamed into outbox/,
// or the whole outbox/ when rescan).
func (o *outbound) walkOutbox(dir string, rescan bool) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if rel, err := filepath.Rel(o.outboxDir, p); err == nil {
			o.jobs.push(job{kind: jobClosed, rel: filepath.ToSlash(rel), rescan: rescan})
		}
		return nil
	})
}

// outboxFile turns one closed outbox file into a transfer, or records why
// it is not sent (Unsent).
func (o *outbound) outboxFile(rel, abs string, fi os.FileInfo, rescan, settled bool) {
	if temporaryName(path.Base(rel)) {
		o.log.Debug("temporary name not sent", "path", rel)
		return
	}
	if heldName(path.Base(rel)) && !settled {
		o.held[rel] = time.Now().Add(o.cfg.DotHold) // a later close starts the hold again
		return
	}
	old := o.recordFor(rel)
	if why := o.unsendable(rel, abs, fi); why != "" {
		if old != nil && !old.Version.sameFile(versionOf(fi)) {
			o.cancelRel(rel, false) // the version it had is gone
		}
		o.setUnsent(rel, why, rescan)
		return
	}
	if old != nil && old.Version.sameFile(versionOf(fi)) {
		return
	}
	rec, err := o.hashOutbox(rel, abs)
	if errors.Is(err, errChanged) {
		o.log.Debug("outbox file changed while hashing", "path", rel)
		return
	}
	if err != nil {
		o.setUnsent(rel, "unreadable: "+errText(err), rescan)
		return
	}
	o.cancelRel(rel, false)
	o.addRecord(rec)
}

// unsendable says why the outbox file at rel cannot be sent as it is, in
// words for its owner, or "".
func (o *outbound) unsendable(rel, abs string, fi os.FileInfo) string {
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("not sent: a %s, not a regular file", fileKind(fi.Mode()))
	case incomplete(abs):
		return "not sent: it was still being written when meshfs stopped; copy it again"
	case fi.Size() > o.cfg.MaxFileSize:
		return fmt.Sprintf("too big: %s, limit %s (MESHFS_MAX_FILE_SIZE)",
			present.IEC(uint64(fi.Size())), present.IEC(uint64(o.cfg.MaxFileSize)))
	}
	if _, err := validatePath(rel); err != nil {
		return "name not portable: " + nameProblem(err)
	}
	return ""
}

// setUnsent records why rel is not sent, for Unsent, and logs it once.
func (o *outbound) setUnsent(rel, why string, loud bool) {
	o.mu.Lock()
	prev := o.unsent[rel]
	o.unsent[rel] = why
	o.mu.Unlock()
	if prev != why || loud {
		o.log.Warn("outbox file not sent", "path", rel, "why", why)
	}
}

// fileKind names a file type for people.
func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// errText is an error's words without the path an *os.PathError repeats.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// hashOutbox reads the file once and builds a record with a delivery for
// every member known now, connected or not.
func (o *outbound) hashOutbox(rel, abs string) (*outRecord, error) {
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	bs := chooseBlockSize(fi.Size(), o.cfg.BlockSize)
	m, ident := manifest{Hash: blockHashName, Size: fi.Size(), BlockSize: bs}, versionOf(fi)
	if fi.Size() < o.cfg.StreamMinSize { // larger files are hashed as they are sent
		if m, ident, err = hashFile(o.ctx, f, bs); err != nil {
			return nil, err
		}
	}
	rec := &outRecord{Rel: rel, Version: ident, Manifest: m, Created: time.Now(), Peers: map[string]*delivery{}}
	rand.Read(rec.ID[:])
	for _, p := range o.transport().Peers() {
		rec.Peers[p.ID.String()] = &delivery{State: StateQueued, Name: safeName(p.Name)}
	}
	return rec, nil
}

// addRecord persists a new record and wakes the senders.
func (o *outbound) addRecord(rec *outRecord) {
	o.mu.Lock()
	o.seq++
	rec.Seq = o.seq
	o.mu.Unlock()
	if err := o.saveRecord(rec); err != nil {
		o.log.Error("delivery record not saved", "path", rec.Rel, "err", err)
		return
	}
	o.mu.Lock()
	o.records[rec.ID] = rec
	o.order = append(o.order, rec)
	o.mu.Unlock()
	o.log.Info("file queued", "path", rec.Rel, "bytes", rec.Version.Size, "members", len(rec.Peers), "id", rec.ID.String())
	o.jobs.push(job{kind: jobFinish, id: rec.ID})
	o.peers.wakeSenders()
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

// recordFor returns the live record for rel, if any.
func (o *outbound) recordFor(rel string) *outRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.recordForLocked(rel)
}

// recordForLocked is recordFor with o.mu held.
func (o *outbound) recordForLocked(rel string) *outRecord {
	for _, r := range o.records {
		if r.Rel == rel {
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
		dc := delivery{State: d.State, Final: d.Final, Reason: d.Reason, Name: d.Name}
		snap.Peers[k] = &dc
	}
	cancelled := rec.cancelled
	o.mu.Unlock()
	if cancelled {
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
	r.cancelled = true
	delete(o.records, r.ID)
	o.order = slices.DeleteFunc(o.order, func(x *outRecord) bool { return x == r })
}

func (o *outbound) removeRecordFile(id transferID) {
	if err := os.Remove(o.recordPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		o.log.Warn("delivery record not removed", "id", id.String(), "err", err)
	}
}

// dropPeerFromRecords forgets a revoked member in every record.
func (o *outbound) dropPeerFromRecords(peer mesh.PeerID) {
	key := peer.String()
	o.mu.Lock()
	var touched []*outRecord
	for _, r := range o.records {
		if _, ok := r.Peers[key]; ok {
			delete(r.Peers, key)
			touched = append(touched, r)
		}
	}
	o.mu.Unlock()
	for _, r := range touched {
		if err := o.saveRecord(r); err != nil {
			o.log.Warn("delivery record not saved", "path", r.Rel, "err", err)
		}
		o.finishRecord(r.ID)
	}
}

// finishRecord moves a fully delivered file to sent/ and deletes its
// record. A file inside a folder waits for its whole tree (settleTrees): a
// program still writing there (git clone, tar -x, an editor) must find the
// files it wrote a moment ago.
func (o *outbound) finishRecord(id transferID) {
	o.mu.Lock()
	rec, ok := o.records[id]
	done := ok && allVerified(rec)
	o.mu.Unlock()
	if !done {
		return
	}
	if top, _, nested := strings.Cut(rec.Rel, "/"); nested {
		if _, known := o.touched[top]; !known {
			o.touched[top] = time.Now()
		}
		o.settling[top] = true
		return
	}
	o.moveDelivered(rec)
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
	abs := filepath.Join(o.outboxDir, filepath.FromSlash(rec.Rel))
	if fi, err := os.Lstat(abs); err == nil && versionOf(fi).sameFile(rec.Version) {
		if err := o.moveToSent(rec.Rel, abs); err != nil {
			o.log.Warn("delivered file not moved to sent", "path", rec.Rel, "err", err)
		} else {
			o.log.Info("file delivered to every member", "path", rec.Rel, "members", len(rec.Peers))
		}
	}
	o.removeRecordFile(rec.ID)
}

// allVerified reports whether every member verified the record.
func allVerified(rec *outRecord) bool {
	for _, d := range rec.Peers {
		if d.State != StateVerified {
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
		o.changed(path.Join("outbox", rel))
		o.changed(path.Join("sent", path.Dir(rel), numberedName(base, n)))
		break
	}
	return atomicfile.SyncDir(dstDir)
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
			o.log.Warn("delivery record unreadable; its file is sent again", "file", ent.Name(), "err", err)
			os.Remove(path)
			continue
		}
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
		o.jobs.push(job{kind: jobClosed, rel: r.Rel, rescan: true})
		o.jobs.push(job{kind: jobFinish, id: r.ID})
	}
	o.mu.Unlock()
	o.walkOutbox(o.outboxDir, true)
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

// Unsent lists the outbox files that are not sent, each with why: too big,
// a name other systems cannot hold, not a regular file, cut short by a
// crash, unreadable. Fixing the cause (or writing the file again) sends it.
func (e *Engine) Unsent() map[string]string {
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	return maps.Clone(e.out.unsent)
}

// UnsentReason is why the outbox file rel is not sent, or "". It reads
// memory only, so FUSE can call it.
func (e *Engine) UnsentReason(rel string) string {
	rel, ok := cleanRel(rel)
	if !ok {
		return ""
	}
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	return e.out.unsent[rel]
}
