package sync

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
}

// blocks is the number of blocks of the file.
func (m *partialMeta) blocks() int { return int(blockCount(m.Size, m.BlockSize)) }

// streamed reports whether the manifest has not arrived yet (send.go).
func (m *partialMeta) streamed() bool { return len(m.Blocks) == 0 && m.Size > 0 }

// inTransfer is one inbound transfer: a partial file being filled.
type inTransfer struct {
	key  inKey
	meta partialMeta

	// Guarded by inbound.mu; f is used only by its owner's receiver.
	owner     *peerConn // receiver that has it open; nil when idle
	f         *os.File
	direct    *os.File // O_DIRECT descriptor of the same partial, or nil (direct.go)
	have      bitmap
	got       []hash32      // streamed: the hash of each block written, checked at DONE
	holes     bitmap        // blocks still holes of the fresh partial: a zero block needs no write (zero.go)
	open      []*openBlock  // blocks whose pieces are arriving (pieces.go); used like f
	haveKnown bool          // false after a restart until the partial is re-hashed
	changed   chan struct{} // closed when a block is held or the transfer ends (blockState)
	rounds    int
	last      time.Time
	placed    *placement // set by placeFinal, recorded by completeIn
}

// closeFile closes the partial's descriptor and forgets the blocks in
// progress, which a new owner starts over (inbound.mu held, or by its owner).
func (t *inTransfer) closeFile() {
	t.open = nil
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
	event func(text string) // a line for the chat log
	done  func(received)    // a transfer completed: its receipt, and passing it on (relay.go)

	mu        sync.Mutex // guards the maps and every inTransfer's fields but f
	transfers map[inKey]*inTransfer
	creating  map[inKey]bool // partials being made (createPartial)
	completed map[inKey]time.Time
	placed    map[placeKey]placement // the latest of each sender's path (completed.go)
	folders   map[mesh.PeerID]string
}

func newInbound(v *env, peers *peerSet, event func(string), done func(received)) *inbound {
	return &inbound{env: v, peers: peers, event: event, done: done, transfers: map[inKey]*inTransfer{}, creating: map[inKey]bool{},
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
	// the partial, the other is told it is busy and offers again later.
	ib.mu.Lock()
	_, exists := ib.transfers[k]
	if exists || ib.creating[k] {
		ib.mu.Unlock()
		return refused(rejectBusy, "transfer busy on another connection")
	}
	ib.creating[k] = true
	ib.mu.Unlock()
	defer func() {
		ib.mu.Lock()
		delete(ib.creating, k)
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
	t := &inTransfer{key: k, meta: meta, have: newBitmap(meta.blocks()), holes: holes, haveKnown: true, last: time.Now()}
	if meta.streamed() {
		t.got = make([]hash32, meta.blocks())
	}
	ib.mu.Lock()
	ib.transfers[k] = t
	ib.mu.Unlock()
	return nil
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

// claim makes p the owner of transfer k with its partial open, within the
// concurrency caps, and re-hashes the partial if its blocks are unknown.
func (ib *inbound) claim(p *peerConn, k inKey) (*inTransfer, error) {
	ib.mu.Lock()
	t := ib.transfers[k]
	switch {
	case t == nil:
		ib.mu.Unlock()
		return nil, refused(rejectIO, "partial vanished")
	case t.owner != nil && t.owner != p:
		ib.mu.Unlock()
		return nil, refused(rejectBusy, "transfer busy on another connection")
	case t.owner == nil:
		if !ib.slotFreeLocked(p) {
			ib.mu.Unlock()
			return nil, refused(rejectBusy, "too many transfers at once, try later")
		}
		t.owner = p
	}
	t.last = time.Now()
	ib.mu.Unlock()
	if err := ib.openPartial(t); err != nil {
		ib.dropPartial(t)
		return nil, err
	}
	return t, nil
}

// slotFreeLocked applies the per-peer and global caps, first freeing p's
// own transfers idle for longer than InboundIdle (other receivers free
// theirs on their own tick: only an owner may close its files).
func (ib *inbound) slotFreeLocked(p *peerConn) bool {
	cutoff := time.Now().Add(-ib.cfg.InboundIdle)
	perPeer, total := 0, 0
	for k, t := range ib.transfers {
		if t.owner == nil {
			continue
		}
		if t.owner == p && t.last.Before(cutoff) {
			t.closeFile()
			t.owner = nil
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

// ownedIn returns transfer k if p owns it, claiming an idle one (its fd was
// closed for idleness) again.
func (ib *inbound) owned(p *peerConn, k inKey) *inTransfer {
	ib.mu.Lock()
	t := ib.transfers[k]
	owned := t != nil && t.owner == p
	idle := t != nil && t.owner == nil
	ib.mu.Unlock()
	if owned {
		return t
	}
	if idle {
		if t, err := ib.claim(p, k); err == nil {
			return t
		}
	}
	return nil
}

// dropPartial forgets a transfer and deletes its files.
func (ib *inbound) dropPartial(t *inTransfer) {
	ib.mu.Lock()
	t.closeFile()
	t.owner = nil
	t.notifyLocked()
	if ib.transfers[t.key] == t {
		delete(ib.transfers, t.key)
	}
	ib.mu.Unlock()
	os.Remove(ib.partPath(t.key))
	os.Remove(ib.metaPath(t.key))
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
		if k.peer == author && k.id != id && t.meta.Path == path && (t.owner == nil || t.owner == p) {
			old = append(old, t)
		}
	}
	ib.mu.Unlock()
	for _, t := range old {
		ib.log.Debug("superseded partial removed", "peer", p.id, "path", path)
		ib.dropPartial(t)
	}
}

// release frees every transfer a stopping receiver owns: no fd
// stays open on a partial after its peer disconnects.
func (ib *inbound) release(p *peerConn) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	for _, t := range ib.transfers {
		if t.owner == p {
			t.closeFile()
			t.owner = nil
		}
	}
}

// closeIdle releases p's transfers untouched since cutoff.
func (ib *inbound) closeIdle(p *peerConn, cutoff time.Time) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	for _, t := range ib.transfers {
		if t.owner == p && t.last.Before(cutoff) {
			t.closeFile()
			t.owner = nil
		}
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
	if t.owner == nil {
		return false, false, true, nil
	}
	if t.changed == nil {
		t.changed = make(chan struct{})
	}
	return false, false, false, t.changed
}
