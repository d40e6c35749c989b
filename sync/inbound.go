package sync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/internal/present"
	"github.com/meshfs/meshfs/mesh"
)

// partialsName is the hidden folder of partial files inside inbox/.
const partialsName = ".meshfs-partials"

// inKey identifies an inbound transfer: its author (the peer field) and
// its ID. Whoever sends it, the author's signature vouches for it.
type inKey struct {
	peer mesh.PeerID
	id   transferID
}

// partialMeta is the sidecar of a partial file: its manifest, so that a
// restarted node can resume.
type partialMeta struct {
	Hash      string     `json:"hash"` // blockHashName
	Peer      string     `json:"peer"` // the author (before relays, always the sender)
	ID        transferID `json:"id"`
	Path      string     `json:"path"` // validated, NFC
	Size      uint64     `json:"size"`
	BlockSize uint32     `json:"block_size"`
	Mode      uint32     `json:"mode"`
	MTime     int64      `json:"mtime"`
	FileHash  hash32     `json:"file_hash"`
	Blocks    []hash32   `json:"blocks"`
	Started   time.Time  `json:"started"`
	// Replaces: the OFFER's, kept so a resumed transfer still replaces.
	Replaces []transferID `json:"replaces,omitempty"`
	// Sig is the author's signature of the manifest; the file is passed
	// on with it (relay.go). Empty until a streamed DONE brings it.
	Sig []byte `json:"sig,omitempty"`
	// To is a private file's recipient (full ID): the partial is its box
	// (private_files.go). Empty for a file to every member.
	To string `json:"to,omitempty"`
}

// to is the recipient of a private file, or the zero ID.
func (m *partialMeta) to() mesh.PeerID {
	id, _ := mesh.ParsePeerID(m.To)
	return id
}

// blocks is the number of blocks of the file.
func (m *partialMeta) blocks() int { return int(blockCount(m.Size, m.BlockSize)) }

// streamed reports whether the manifest has not arrived yet (send.go).
func (m *partialMeta) streamed() bool { return len(m.Blocks) == 0 && m.Size > 0 }

// inTransfer is one inbound transfer: a partial file being filled.
type inTransfer struct {
	key  inKey
	meta partialMeta

	// Guarded by inbound.mu, but f and direct: openPartial sets them
	// (under openMu) while t has no open files, and they are closed
	// only when its last source leaves or it ends (sources.go).
	sources   map[*peerConn]*source // members sending it now (sources.go)
	asked     bitmap                // blocks in a window of a source
	finishing bool                  // all held: being verified and placed
	openMu    sync.Mutex
	f         *os.File
	direct    *os.File    // O_DIRECT descriptor of the same partial, or nil (direct.go)
	noDirect  atomic.Bool // the filesystem refused an O_DIRECT write: f only
	have      bitmap
	got       []hash32      // streamed: the hash of each block written, checked at DONE
	holes     bitmap        // blocks still holes of the fresh partial: a zero block needs no write (zero.go)
	haveKnown bool          // false after a restart until the partial is re-hashed
	changed   chan struct{} // closed when a block is held or the transfer ends (blockState)
	rounds    int
	last      time.Time
	placed    *placement // set by placeFinal, recorded by completeIn
}

// closeFile closes the partial's descriptors (inbound.mu held), once no
// source writes to them.
func (t *inTransfer) closeFile() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	if t.direct != nil {
		t.direct.Close()
		t.direct = nil
	}
}

// sameManifest reports whether a re-OFFER matches what we stored. Either
// side may still be without the block hashes (send.go); DONE then checks.
func (t *inTransfer) sameManifest(m *offerMsg) bool {
	if t.meta.Size != m.Size || t.meta.BlockSize != m.BlockSize {
		return false
	}
	return m.streamed() || t.meta.streamed() || t.meta.FileHash == m.FileHash
}

// partBase is the file name stem of a partial: full peer ID (a short one
// could be ground to collide) and transfer ID.
func partBase(k inKey) string { return k.peer.String() + "-" + k.id.String() }

// inbound owns the receiving side's state: the transfers being received
// into partial files, the IDs of completed ones (so a replayed OFFER gets
// an ACK, not a second copy) and the inbox folder of each peer. Each
// connection's receiver (receive.go) works on the transfers it owns.
type inbound struct {
	*env
	peers *peerSet
	event func(text string)                   // a line for the chat log
	done  func(received)                      // a transfer completed: its receipt, and passing it on (relay.go)
	holds func(k inKey, who mesh.PeerID) bool // who's receipt for k is known (receipts.go)
	// fetchSent is the last FETCHING sent per transfer, with its own
	// lock (fetching.go).
	fetchSent fetchNotices

	mu        sync.Mutex // guards the maps and every inTransfer's fields but f
	transfers map[inKey]*inTransfer
	creating  map[inKey]chan struct{} // partials being made (createPartial), closed when made or not
	completed map[inKey]time.Time
	placed    map[placeKey]placement // the latest of each sender's path (completed.go)
	folders   map[mesh.PeerID]string
}

func newInbound(v *env, peers *peerSet, event func(string), done func(received), holds func(inKey, mesh.PeerID) bool) *inbound {
	return &inbound{env: v, peers: peers, event: event, done: done, holds: holds, transfers: map[inKey]*inTransfer{}, creating: map[inKey]chan struct{}{},
		completed: map[inKey]time.Time{}, placed: map[placeKey]placement{}, folders: map[mesh.PeerID]string{}}
}

// load reads the inbox folder names, the completed transfers and the
// partials at New.
func (ib *inbound) load() error {
	if err := ib.loadFolders(); err != nil {
		return err
	}
	if err := ib.loadCompleted(); err != nil {
		return err
	}
	return ib.loadPartials()
}

// closeFiles closes every partial's descriptors, once the receivers ended.
func (ib *inbound) closeFiles() {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	for _, t := range ib.transfers {
		t.closeFile()
	}
}

func (ib *inbound) partPath(k inKey) string { return filepath.Join(ib.partsDir, partBase(k)+".part") }
func (ib *inbound) metaPath(k inKey) string { return filepath.Join(ib.partsDir, partBase(k)+".json") }

// createPartial makes the partial file, a hole of the file's size with
// its data blocks reserved, and its sidecar.
func (ib *inbound) createPartial(k inKey, meta partialMeta) error {
	// Two members may offer one file at the same moment: the first makes
	// the partial, the other waits for it (awaitCreating), or if it came
	// in between is told it is busy and offers again later.
	ib.mu.Lock()
	_, exists := ib.transfers[k]
	if exists || ib.creating[k] != nil {
		ib.mu.Unlock()
		return refused(rejectBusy, "transfer busy on another connection")
	}
	made := make(chan struct{})
	ib.creating[k] = made
	ib.mu.Unlock()
	defer func() {
		ib.mu.Lock()
		delete(ib.creating, k)
		close(made)
		ib.mu.Unlock()
	}()
	f, err := os.OpenFile(ib.partPath(k), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create partial: %w", err)
	}
	holes, err := layoutPartial(f, &meta)
	f.Close()
	if err != nil {
		os.Remove(ib.partPath(k))
		return err
	}
	if err := atomicfile.WriteJSON(ib.metaPath(k), &meta); err != nil {
		os.Remove(ib.partPath(k))
		return err
	}
	t := newInTransfer(k, meta)
	t.have, t.holes, t.haveKnown = newBitmap(meta.blocks()), holes, true
	if meta.streamed() {
		t.got = make([]hash32, meta.blocks())
	}
	ib.mu.Lock()
	ib.transfers[k] = t
	ib.mu.Unlock()
	return nil
}

// awaitCreating waits while another connection makes k's partial, and
// reports whether it did: then the transfer exists, or its making failed
// (claim says so).
func (ib *inbound) awaitCreating(ctx context.Context, k inKey) bool {
	ib.mu.Lock()
	made := ib.creating[k]
	ib.mu.Unlock()
	if made == nil {
		return false
	}
	select {
	case <-made:
	case <-ctx.Done():
	}
	return true
}

// checkQuota refuses when this peer's partials would exceed 2*MaxFileSize.
func (ib *inbound) checkQuota(peer mesh.PeerID, size uint64) error {
	ib.mu.Lock()
	var used uint64
	for k, t := range ib.transfers {
		if k.peer == peer {
			used += t.meta.Size
		}
	}
	ib.mu.Unlock()
	if limit := 2 * uint64(ib.cfg.MaxFileSize); used+size > limit {
		return refused(rejectQuota, fmt.Sprintf("%s of partial transfers already held, limit %s",
			present.IEC(used), present.IEC(limit)))
	}
	return nil
}

// checkSpace refuses when the file would eat into the MinFreePercent reserve.
func (ib *inbound) checkSpace(need uint64) error {
	free, total, err := ib.freeSpace(ib.inboxDir)
	if err != nil {
		return err
	}
	reserve := uint64(float64(total) * ib.cfg.MinFreePercent / 100)
	if free < reserve || free-reserve < need {
		return refused(rejectNoSpace, fmt.Sprintf("no space left on %s's disk: needs %s, %s free",
			ib.selfName(), present.IEC(need), present.IEC(free)))
	}
	return nil
}

// errCompleted: the transfer completed since its OFFER was looked at (from
// another member): the answer is ACK.
var errCompleted = errors.New("transfer completed meanwhile")

// newInTransfer is a transfer without sources, its blocks not known yet.
func newInTransfer(k inKey, meta partialMeta) *inTransfer {
	return &inTransfer{key: k, meta: meta, sources: map[*peerConn]*source{}, asked: newBitmap(meta.blocks()), last: time.Now()}
}

// claim makes p a source of transfer k with its partial open, within the
// concurrency caps, and re-hashes the partial if its blocks are unknown.
// A transfer being received already takes more sources only when its
// manifest is known (sources.go); those add no open file.
func (ib *inbound) claim(p *peerConn, k inKey) (*inTransfer, *source, error) {
	holder := ib.holds(k, p.id)
	ib.mu.Lock()
	t := ib.transfers[k]
	if t == nil {
		_, done := ib.completed[k]
		ib.mu.Unlock()
		if done {
			return nil, nil, errCompleted
		}
		return nil, nil, refused(rejectIO, "partial vanished")
	}
	if len(t.sources) == 0 && !ib.slotFreeLocked(p) {
		ib.mu.Unlock()
		return nil, nil, refused(rejectBusy, "too many transfers at once, try later")
	}
	s, ok := t.addSourceLocked(p, holder, time.Now(), ib.cfg.SourceStall)
	if !ok {
		ib.mu.Unlock()
		return nil, nil, refused(rejectBusy, "transfer busy on another connection")
	}
	t.last = time.Now()
	ib.mu.Unlock()
	if err := ib.openPartial(t); err != nil {
		ib.dropPartial(t)
		return nil, nil, err
	}
	return t, s, nil
}

// slotFreeLocked applies the per-peer and global caps, first freeing p's
// own transfers idle for longer than InboundIdle (other receivers free
// theirs on their own tick: only an owner may close its files).
func (ib *inbound) slotFreeLocked(p *peerConn) bool {
	cutoff := time.Now().Add(-ib.cfg.InboundIdle)
	perPeer, total := 0, 0
	for k, t := range ib.transfers {
		if t.sources[p] != nil && t.last.Before(cutoff) {
			t.removeSourceLocked(p)
		}
		if len(t.sources) == 0 {
			continue
		}
		total++
		if k.peer == p.id {
			perPeer++
		}
	}
	return perPeer < ib.cfg.MaxInboundPerPeer && total < ib.cfg.MaxInboundTotal
}

// openPartial opens the partial for writing (large files also with
// O_DIRECT) and learns which blocks it holds when that is not known (after
// a restart).
func (ib *inbound) openPartial(t *inTransfer) error {
	t.openMu.Lock()
	defer t.openMu.Unlock()
	if t.f == nil {
		f, err := os.OpenFile(ib.partPath(t.key), os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("open partial: %w", err)
		}
		t.f = f
		if t.meta.Size >= directMinSize {
			t.direct = openDirect(ib.partPath(t.key), int(t.meta.BlockSize))
		}
	}
	if !t.haveKnown {
		// A partial from before sparse files were kept may be short, and a
		// zero block written as a hole would not lengthen it.
		if err := t.f.Truncate(int64(t.meta.Size)); err != nil {
			return fmt.Errorf("size partial: %w", err)
		}
		have, err := haveBlocks(t.f, &t.meta)
		if err != nil {
			return err
		}
		ib.mu.Lock()
		t.have, t.haveKnown = have, true
		t.notifyLocked()
		if t.meta.streamed() {
			t.got = make([]hash32, t.meta.blocks())
		}
		ib.mu.Unlock()
		ib.log.Info("partial resumed", "peer", t.key.peer, "path", t.meta.Path, "have", have.count(), "of", have.n)
	}
	return nil
}

// owned returns transfer k and p's source of it, claiming an idle one
// (closed for idleness) again; nil when p is not sending it.
func (ib *inbound) owned(p *peerConn, k inKey) (*inTransfer, *source) {
	ib.mu.Lock()
	t := ib.transfers[k]
	var s *source
	if t != nil {
		s = t.sources[p]
	}
	idle := t != nil && len(t.sources) == 0
	ib.mu.Unlock()
	if s != nil {
		return t, s
	}
	if idle {
		if t, s, err := ib.claim(p, k); err == nil {
			return t, s
		}
	}
	return nil, nil
}

// dropPartial forgets a transfer and deletes its files.
func (ib *inbound) dropPartial(t *inTransfer) {
	ib.mu.Lock()
	t.closeFile()
	clear(t.sources)
	t.notifyLocked()
	if ib.transfers[t.key] == t {
		delete(ib.transfers, t.key)
	}
	ib.mu.Unlock()
	os.Remove(ib.partPath(t.key))
	os.Remove(ib.metaPath(t.key))
	ib.forgetFetching(t.key)
}

// dropSuperseded removes p's unfinished transfers of path other than id. A
// sender keeps one version of a path at a time, so an OFFER of another
// version means it gave the older one up (the file changed while it was
// sent, as git's and editors' files do); holding its slot until
// InboundIdle would refuse the sender's next offers as busy.
func (ib *inbound) dropSuperseded(p *peerConn, author mesh.PeerID, path string, id transferID) {
	ib.mu.Lock()
	var old []*inTransfer
	for k, t := range ib.transfers {
		if k.peer == author && k.id != id && t.meta.Path == path && t.onlyFrom(p) {
			old = append(old, t)
		}
	}
	ib.mu.Unlock()
	for _, t := range old {
		ib.log.Debug("superseded partial removed", "peer", p.id, "path", path)
		ib.dropPartial(t)
	}
}

// onlyFrom reports whether t has no source but p (inbound.mu held).
func (t *inTransfer) onlyFrom(p *peerConn) bool {
	return len(t.sources) == 0 || len(t.sources) == 1 && t.sources[p] != nil
}

// release detaches a stopping receiver from every transfer it sends: no
// fd stays open on a partial after its last source disconnects, and what
// it was asked for goes to the others.
func (ib *inbound) release(p *peerConn) {
	ib.detach(p, time.Time{})
}

// closeIdle detaches p from its transfers untouched since cutoff.
func (ib *inbound) closeIdle(p *peerConn, cutoff time.Time) {
	ib.detach(p, cutoff)
}

// detach removes p from the transfers it sends that were last touched
// before cutoff (all of them if cutoff is zero), and gives its windows to
// their other sources.
func (ib *inbound) detach(p *peerConn, cutoff time.Time) {
	ib.mu.Lock()
	var others []*inTransfer
	for _, t := range ib.transfers {
		if !cutoff.IsZero() && !t.last.Before(cutoff) {
			continue
		}
		if was, more := t.removeSourceLocked(p); was && more {
			others = append(others, t)
		}
	}
	ib.mu.Unlock()
	for _, t := range others {
		ib.askIdle(t)
		ib.tellSources(t)
	}
}

// notifyLocked wakes whoever waits for a block of t (ib.mu held).
func (t *inTransfer) notifyLocked() {
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
}

// blockState says whether block i of transfer k is held here, verified:
// a member passing on a file it is still receiving sends each block once
// it has it (relay.go). gone means the transfer ended without the file,
// idle that it is not coming in now (no member is sending it here);
// otherwise, if not held, wait is closed when that may have changed.
func (ib *inbound) blockState(k inKey, i int) (held, gone, idle bool, wait <-chan struct{}) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	t := ib.transfers[k]
	if t == nil {
		_, done := ib.completed[k]
		return done, !done, false, nil
	}
	if t.haveKnown && i < t.have.n && t.have.has(i) {
		return true, false, false, nil
	}
	if len(t.sources) == 0 {
		return false, false, true, nil
	}
	if t.changed == nil {
		t.changed = make(chan struct{})
	}
	return false, false, false, t.changed
}
