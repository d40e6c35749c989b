package sync

import (
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

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
	Seq      uint64               `json:"seq"`                // creation order
	Peers    map[string]*delivery `json:"peers"`              // key: full peer ID
	Type     entryType            `json:"type,omitempty"`     // file (omitted), folder or symlink
	Target   string               `json:"target,omitempty"`   // a symlink's target, clean
	Mode     uint32               `json:"mode,omitempty"`     // permission bits now; Version has those hashed
	Replaces []transferID         `json:"replaces,omitempty"` // earlier versions still in outbox/ (replacesOf)
	// A relay record passes on a file another member wrote (relay.go):
	// Author is that member's full ID, Src the Root-relative path of the
	// verified copy placed here, Sig the author's manifest signature. Own
	// records have none of them (and are signed when offered).
	Author      string `json:"author,omitempty"`
	Src         string `json:"src,omitempty"`
	Sig         []byte `json:"sig,omitempty"`
	AuthorMTime int64  `json:"author_mtime,omitempty"` // the mtime signed; Version is the copy's here
	// Partial: Src is a partial file still being received; each block is
	// sent once it is held there (relay.go). Never changes on a record:
	// the record of the placed copy replaces it.
	Partial bool `json:"partial,omitempty"`
	// To is a private file's one recipient (full ID): the record sends a
	// box (private_files.go), and it is done once that member has it.
	To string `json:"to,omitempty"`
	// Plain and Spool are an own private file's: the identity of the file
	// in to/<name>/, and the name of its box in STATE/sync/sealed/.
	Plain *fileVersion `json:"plain,omitempty"`
	Spool string       `json:"spool,omitempty"`

	// Guarded by outbound.mu.
	cancelled bool          // removed or rewritten; senders stop at the next block
	detached  bool          // replaced by a newer record of the same ID (replaceRelay); never saved
	stream    *streamHashes // block hashes so far, while Manifest has none (send.go)
}

// delivery is the state of one record for one member.
type delivery struct {
	State  DeliveryState `json:"state"`
	Final  bool          `json:"final,omitempty"` // refused until the file changes (name, size, quota)
	Reason string        `json:"reason,omitempty"`
	Name   string        `json:"name"`           // display name when the record was made
	Mode   uint32        `json:"mode,omitempty"` // the mode offered; an ATTR follows a later chmod

	// In memory only, guarded by outbound.mu.
	owner   *peerConn     // the sender that has it in flight; nil when idle
	phase   DeliveryState // PhaseOffered, PhaseSending or PhaseVerifying while owned
	sent    int64         // bytes sent in the current attempt
	retryAt time.Time     // when a refused delivery is offered again
	started time.Time     // when the current attempt began
	fetch   fetchNote     // the member's last FETCHING: whom it takes the file from (fetching.go)
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
	jobFolder                     // a walk found an empty outbox folder
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
	// memberNamed finds the member whose to/ folder has a name
	// (Engine.memberNamed).
	memberNamed func(name string) (mesh.PeerID, bool)
	// blocks is inbound.blockState: whether a block of a file still being
	// received here is held yet, for a relay record of it (relay.go).
	blocks func(k inKey, i int) (held, gone, idle bool, wait <-chan struct{})

	// Owned by the loop goroutine.
	held     map[string]time.Time // dot-named files and when their hold ends
	touched  map[string]time.Time // top-level outbox folders and their last change
	settling map[string]bool      // top-level folders with delivered files waiting to move

	mu      sync.Mutex // guards the records and their deliveries
	records map[transferID]*outRecord
	order   []*outRecord      // by creation; cancelled records are skipped
	unsent  map[string]string // outbox paths not sent, and why
	recent  []TransferStatus  // the latest verified deliveries, oldest first (recent.go)
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

func (o *outbound) runJob(j job) {
	switch j.kind {
	case jobClosed:
		o.touch(j.rel)
		o.outboxClosed(j.rel, j.rescan, false)
	case jobRemoved:
		if rel, ok := cleanAny(j.rel); ok {
			o.touch(rel)
			o.cancelRel(rel, true)
		}
	case jobPeerRemoved:
		o.dropPeerFromRecords(j.peer)
	case jobFinish:
		o.finishRecord(j.id)
	case jobFolder:
		o.held[j.rel] = time.Now().Add(o.cfg.DotHold) // filled soon by cp -r, tar, git
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
	rel, ok := cleanAny(rel)
	if !ok {
		o.log.Warn("path outside outbox/ ignored", "path", rel, "fix", "nothing: it is not sent")
		return
	}
	abs := o.diskPath(rel)
	fi, err := os.Lstat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		o.cancelRel(rel, false)
	case err != nil:
		o.log.Warn("outbox file unreadable", "path", rel, "err", err, "fix", "check its permissions, then save it again")
	case fi.IsDir() && settled:
		o.outboxFolder(rel, abs, fi)
	case fi.IsDir():
		o.walkOutbox(abs, rescan)
	default:
		o.outboxFile(rel, abs, fi, rescan, settled)
	}
}

// walkOutbox queues every file and link under dir (a folder renamed into
// outbox/, or the whole outbox/ when rescan), and every empty folder.
func (o *outbound) walkOutbox(dir string, rescan bool) {
	empty := map[string]bool{} // folders seen with no entry seen yet
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !temporaryName(d.Name()) { // a folder holding only those arrives empty
			delete(empty, filepath.Dir(p))
		}
		if d.IsDir() {
			_, inside := o.relOf(p) // not outbox/, to/ or to/<name>/ themselves
			empty[p] = inside
			return nil
		}
		if rel, ok := o.relOf(p); ok {
			o.jobs.push(job{kind: jobClosed, rel: rel, rescan: rescan})
		}
		return nil
	})
	for p, ok := range empty {
		if rel, inside := o.relOf(p); ok && inside {
			o.jobs.push(job{kind: jobFolder, rel: rel, rescan: rescan})
		}
	}
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
		if old != nil && !old.identity().sameFile(versionOf(fi)) {
			o.cancelRel(rel, false) // the version it had is gone
		}
		o.setUnsent(rel, why, rescan)
		return
	}
	if old != nil && old.identity().sameFile(versionOf(fi)) {
		o.noteMode(old, fi)
		return
	}
	rec, err := o.newRecord(rel, abs, fi)
	if errors.Is(err, errChanged) {
		o.log.Debug("outbox file changed while hashing", "path", rel)
		return
	}
	if err != nil {
		o.setUnsent(rel, "unreadable: "+errText(err), rescan)
		return
	}
	rec.Replaces = replacesOf(rec, old)
	o.cancelRel(rel, false)
	o.addRecord(rec)
}

// replacesOf lists the transfers rec, a new version of a file, replaces at the
// receivers: old (the version it supersedes, still in outbox/) and what
// old replaced, newest first. A tool building a folder (git clone, an
// installer) writes some of its files more than once, and the folder is
// meant to arrive as it was left, not with numbered copies of .git/HEAD.
// A top-level file written again is a new file, and a file written again
// after it moved to sent/ a new version: both arrive numbered (README).
// The receiver replaces only a file it placed for one of these transfers
// and nobody changed since, so what a user there edited is never lost.
func replacesOf(rec, old *outRecord) []transferID {
	if old == nil || !strings.Contains(rec.Rel, "/") || rec.Type != entryFile || old.Type != entryFile || rec.To != "" {
		return nil
	}
	ids := append([]transferID{old.ID}, old.Replaces...)
	return ids[:min(len(ids), maxReplaces)]
}

// newRecord builds the record of a file or a link.
func (o *outbound) newRecord(rel, abs string, fi os.FileInfo) (*outRecord, error) {
	if _, _, private := privateParts(rel); private {
		return o.sealRecord(rel, abs)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return o.linkRecord(rel, abs, fi)
	}
	return o.hashOutbox(rel, abs)
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
	// A larger file is hashed as it is sent, unless it goes to several
	// members: then the first passes it on while it comes in, which needs
	// the signed manifest at once (relay.go).
	if fi.Size() < o.cfg.StreamMinSize || len(o.transport().Peers()) > 1 {
		if m, ident, err = hashFile(o.ctx, f, bs); err != nil {
			return nil, err
		}
	}
	return o.recordOf(rel, ident, m), nil
}

// recordOf makes a record with a delivery for every member known now,
// connected or not.
func (o *outbound) recordOf(rel string, v fileVersion, m manifest) *outRecord {
	rec := &outRecord{Rel: rel, Version: v, Manifest: m, Created: time.Now(), Peers: map[string]*delivery{}, Mode: v.Mode & 0o777}
	rand.Read(rec.ID[:])
	for _, p := range o.transport().Peers() {
		rec.Peers[p.ID.String()] = &delivery{State: StateQueued, Name: safeName(p.Name)}
	}
	return rec
}

// addRecord persists a new record and wakes the senders.
func (o *outbound) addRecord(rec *outRecord) {
	o.mu.Lock()
	o.seq++
	rec.Seq = o.seq
	o.mu.Unlock()
	if err := o.saveRecord(rec); err != nil {
		o.log.Error("outbox file not queued: its delivery state was not saved", "path", rec.Rel, "err", err,
			"fix", fixState+", then save the file again")
		return
	}
	o.mu.Lock()
	o.records[rec.ID] = rec
	o.order = append(o.order, rec)
	o.mu.Unlock()
	o.log.Info(rec.Type.String()+" queued", "path", rec.Rel, "bytes", rec.Manifest.Size, "members", len(rec.Peers), "id", rec.ID.String())
	o.jobs.push(job{kind: jobFinish, id: rec.ID})
	o.peers.wakeSenders()
}
