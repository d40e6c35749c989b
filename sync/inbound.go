package sync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/internal/present"
	"github.com/meshfs/meshfs/mesh"
)

// partialsName is the hidden folder of partial files inside inbox/.
const partialsName = ".meshfs-partials"

// inKey identifies an inbound transfer: a peer can only feed its own.
type inKey struct {
	peer mesh.PeerID
	id   transferID
}

// partialMeta is the sidecar of a partial file: its manifest, so that a
// restarted node can resume.
type partialMeta struct {
	Hash      string     `json:"hash"` // blockHashName
	Peer      string     `json:"peer"`
	ID        transferID `json:"id"`
	Path      string     `json:"path"` // validated, NFC
	Size      uint64     `json:"size"`
	BlockSize uint32     `json:"block_size"`
	Mode      uint32     `json:"mode"`
	MTime     int64      `json:"mtime"`
	FileHash  hash32     `json:"file_hash"`
	Blocks    []hash32   `json:"blocks"`
	Started   time.Time  `json:"started"`
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
	got       []hash32 // streamed: the hash of each block written, checked at DONE
	haveKnown bool     // false after a restart until the partial is re-hashed
	rounds    int
	last      time.Time
}

// closeFile closes the partial's descriptor (inbound.mu held, or by its owner).
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
	event func(text string) // a line for the chat log

	mu        sync.Mutex // guards the maps and every inTransfer's fields but f
	transfers map[inKey]*inTransfer
	completed map[inKey]time.Time
	folders   map[mesh.PeerID]string
}

func newInbound(v *env, peers *peerSet, event func(string)) *inbound {
	return &inbound{env: v, peers: peers, event: event, transfers: map[inKey]*inTransfer{},
		completed: map[inKey]time.Time{}, folders: map[mesh.PeerID]string{}}
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

// isCompleted reports whether transfer k was received and placed.
func (ib *inbound) isCompleted(k inKey) bool {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	_, done := ib.completed[k]
	return done
}

func (ib *inbound) partPath(k inKey) string { return filepath.Join(ib.partsDir, partBase(k)+".part") }
func (ib *inbound) metaPath(k inKey) string { return filepath.Join(ib.partsDir, partBase(k)+".json") }

// createPartial makes the empty partial file and its sidecar.
func (ib *inbound) createPartial(k inKey, meta partialMeta) error {
	f, err := os.OpenFile(ib.partPath(k), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create partial: %w", err)
	}
	err = preallocate(f, meta.Size)
	f.Close()
	if err != nil {
		os.Remove(ib.partPath(k))
		return err
	}
	if err := atomicfile.WriteJSON(ib.metaPath(k), &meta); err != nil {
		os.Remove(ib.partPath(k))
		return err
	}
	t := &inTransfer{key: k, meta: meta, have: newBitmap(meta.blocks()), haveKnown: true, last: time.Now()}
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
		have, err := haveBlocks(t.f, &t.meta)
		if err != nil {
			return err
		}
		ib.mu.Lock()
		t.have, t.haveKnown = have, true
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
func (ib *inbound) dropSuperseded(p *peerConn, path string, id transferID) {
	ib.mu.Lock()
	var old []*inTransfer
	for k, t := range ib.transfers {
		if k.peer == p.id && k.id != id && t.meta.Path == path && (t.owner == nil || t.owner == p) {
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

// makeDurable sets mode and mtime, fsyncs and closes the partial.
func (ib *inbound) makeDurable(t *inTransfer) error {
	mode := os.FileMode(t.meta.Mode & 0o755)
	if mode == 0 {
		mode = 0o644
	}
	if err := t.f.Chmod(mode | 0o400); err != nil {
		return err
	}
	if err := t.f.Sync(); err != nil {
		return err
	}
	ib.mu.Lock()
	t.closeFile()
	ib.mu.Unlock()
	mtime := fileTime(t.meta.MTime)
	return os.Chtimes(ib.partPath(t.key), mtime, mtime)
}

// placeFinal renames the partial to inbox/<folder>/<dirs>/<name> and
// fsyncs the folder. It returns the inbox-relative path it chose.
func (ib *inbound) placeFinal(t *inTransfer) (string, error) {
	folder, err := ib.folderFor(t.key.peer)
	if err != nil {
		return "", err
	}
	parts, err := openDir(ib.partsDir)
	if err != nil {
		return "", err
	}
	defer parts.close()
	dir, err := openDir(ib.inboxDir)
	if err != nil {
		return "", err
	}
	comps := append([]string{folder}, strings.Split(t.meta.Path, "/")...)
	used := make([]string, 0, len(comps))
	for _, c := range comps[:len(comps)-1] {
		sub, name, err := dir.subdir(c)
		dir.close()
		if err != nil {
			return "", err
		}
		dir = sub
		used = append(used, name)
	}
	defer dir.close()
	final, err := dir.renameUnique(parts, partBase(t.key)+".part", comps[len(comps)-1])
	if err != nil {
		return "", err
	}
	failpoint("after-rename")
	if err := dir.sync(); err != nil {
		return "", fmt.Errorf("sync folder: %w", err)
	}
	return path.Join(append([]string{"inbox"}, append(used, final)...)...), nil
}

// completeIn remembers the transfer as done and removes its sidecar. A
// crash before this leaves a sidecar without a partial, which loadPartials
// also reads as done.
func (ib *inbound) completeIn(t *inTransfer) {
	ib.mu.Lock()
	ib.completed[t.key] = time.Now()
	delete(ib.transfers, t.key)
	t.owner = nil
	ib.mu.Unlock()
	if err := ib.journalCompleted(t.key); err != nil {
		ib.log.Warn("completed transfer not saved", "err", err)
	}
	os.Remove(ib.metaPath(t.key))
}

// journalCompleted appends one completed ID to completed.jsonl: cheap per
// file, where rewriting the whole list would cost O(n) per file. New folds
// the journal into completed.json.
func (ib *inbound) journalCompleted(k inKey) error {
	line, err := json.Marshal(completedEntry{Peer: k.peer.String(), ID: k.id, At: time.Now()})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(ib.completedPath+"l", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// saveCompleted stores the completed IDs younger than CompletedTTL in
// completed.json and empties the journal.
func (ib *inbound) saveCompleted() error {
	cutoff := time.Now().Add(-ib.cfg.CompletedTTL)
	ib.mu.Lock()
	list := make([]completedEntry, 0, len(ib.completed))
	for k, at := range ib.completed {
		if at.Before(cutoff) {
			delete(ib.completed, k)
			continue
		}
		list = append(list, completedEntry{Peer: k.peer.String(), ID: k.id, At: at})
	}
	ib.mu.Unlock()
	if err := atomicfile.WriteJSON(ib.completedPath, list); err != nil {
		return err
	}
	if err := os.Remove(ib.completedPath + "l"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// loadCompleted reads completed.json and its journal at New.
func (ib *inbound) loadCompleted() error {
	var list []completedEntry
	if err := atomicfile.ReadJSON(ib.completedPath, &list); err != nil {
		ib.log.Warn("completed transfers unreadable", "err", err)
		return nil
	}
	if data, err := os.ReadFile(ib.completedPath + "l"); err == nil {
		for _, line := range bytes.Split(data, []byte("\n")) {
			var c completedEntry
			if json.Unmarshal(line, &c) == nil {
				list = append(list, c)
			}
		}
	}
	cutoff := time.Now().Add(-ib.cfg.CompletedTTL)
	for _, c := range list {
		peer, err := mesh.ParsePeerID(c.Peer)
		if err != nil || c.At.Before(cutoff) {
			continue
		}
		ib.completed[inKey{peer, c.ID}] = c.At
	}
	return nil
}

// partialFiles lists the sidecars in the partials folder.
func (ib *inbound) partialFiles() ([]string, error) {
	return filepath.Glob(filepath.Join(ib.partsDir, "*.json"))
}

// folderFor returns the inbox folder of a peer: its sanitised display name,
// or "<name>-<short id>" when another member already has that folder. The
// mapping is persisted, so it never changes for an ID.
func (ib *inbound) folderFor(peer mesh.PeerID) (string, error) {
	name := ib.peerName(peer)
	ib.mu.Lock()
	if f, ok := ib.folders[peer]; ok {
		ib.mu.Unlock()
		return f, nil
	}
	folder := safeName(name)
	for id, f := range ib.folders {
		if id != peer && foldKey(f) == foldKey(folder) {
			folder = safeName(folder + "-" + peer.Short())
			if foldKey(folder) == foldKey(f) || len(folder) < len(peer.Short()) {
				folder = peer.Short()
			}
			break
		}
	}
	ib.folders[peer] = folder
	snap := make(map[string]string, len(ib.folders))
	for id, f := range ib.folders {
		snap[id.String()] = f
	}
	ib.mu.Unlock()
	if err := atomicfile.WriteJSON(ib.foldersPath, snap); err != nil {
		return "", fmt.Errorf("save folder names: %w", err)
	}
	return folder, nil
}

// peerName is the display name of a peer: from events, else from the
// transport's member list, else its short ID.
func (ib *inbound) peerName(peer mesh.PeerID) string {
	if name, ok := ib.peers.name(peer); ok {
		return name
	}
	if t := ib.transport(); t != nil {
		for _, p := range t.Peers() {
			if p.ID == peer && p.Name != "" {
				ib.peers.noteName(p)
			}
		}
	}
	return ib.peers.displayName(peer)
}

// loadFolders reads folders.json at New.
func (ib *inbound) loadFolders() error {
	snap := map[string]string{}
	if err := atomicfile.ReadJSON(ib.foldersPath, &snap); err != nil {
		return err
	}
	for s, f := range snap {
		id, err := mesh.ParsePeerID(s)
		if err != nil {
			continue
		}
		ib.folders[id] = f
	}
	return nil
}

// selfName is our own display name, for reasons sent to peers.
func (ib *inbound) selfName() string {
	if t := ib.transport(); t != nil {
		return safeName(t.Name())
	}
	return "this node"
}

// loadPartials reads the partials' sidecars at New. A sidecar whose
// partial is gone was renamed into place before a crash: that transfer is
// complete. A partial without a sidecar cannot be resumed and is removed.
func (ib *inbound) loadPartials() error {
	metas, err := ib.partialFiles()
	if err != nil {
		return err
	}
	for _, mp := range metas {
		ib.loadPartial(mp)
	}
	parts, _ := filepath.Glob(filepath.Join(ib.partsDir, "*.part"))
	for _, pp := range parts {
		if _, err := os.Stat(strings.TrimSuffix(pp, ".part") + ".json"); errors.Is(err, fs.ErrNotExist) {
			os.Remove(pp)
		}
	}
	return ib.saveCompleted()
}

// loadPartial loads one sidecar.
func (ib *inbound) loadPartial(metaPath string) {
	var meta partialMeta
	err := atomicfile.ReadJSON(metaPath, &meta)
	peer, perr := mesh.ParsePeerID(meta.Peer)
	if err != nil || perr != nil || (len(meta.Blocks) != meta.blocks() && !meta.streamed()) {
		ib.log.Warn("partial sidecar unreadable", "file", filepath.Base(metaPath), "err", err)
		os.Remove(metaPath)
		return
	}
	k := inKey{peer, meta.ID}
	if meta.Hash != blockHashName {
		// Its sender offers the file again under a new ID.
		ib.log.Info("partial in an unknown format dropped", "path", meta.Path)
		os.Remove(ib.partPath(k))
		os.Remove(metaPath)
		return
	}
	fi, err := os.Stat(ib.partPath(k))
	if errors.Is(err, fs.ErrNotExist) {
		ib.completed[k] = time.Now()
		os.Remove(metaPath)
		return
	}
	last := meta.Started
	if err == nil {
		last = fi.ModTime()
	}
	ib.transfers[k] = &inTransfer{key: k, meta: meta, have: newBitmap(meta.blocks()), last: last}
}

// janitorLoop removes partials untouched for PartialTTL, at Start and every
// JanitorInterval.
func (ib *inbound) janitorLoop() {
	tick := time.NewTicker(ib.cfg.JanitorInterval)
	defer tick.Stop()
	for {
		ib.removeStale(time.Now().Add(-ib.cfg.PartialTTL))
		select {
		case <-ib.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// removeStale deletes idle partials last touched before cutoff.
func (ib *inbound) removeStale(cutoff time.Time) {
	ib.mu.Lock()
	var stale []*inTransfer
	for k, t := range ib.transfers {
		if t.owner == nil && t.last.Before(cutoff) {
			stale = append(stale, t)
			delete(ib.transfers, k)
		}
	}
	ib.mu.Unlock()
	for _, t := range stale {
		ib.log.Info("stale partial removed", "peer", t.key.peer, "path", t.meta.Path)
		t.closeFile()
		os.Remove(ib.partPath(t.key))
		os.Remove(ib.metaPath(t.key))
	}
}

// refusal is a reason to refuse a transfer that is fit to send to the
// member: fixed wording and figures, nothing from the local file system.
type refusal struct {
	code   rejectCode
	reason string
}

func refused(code rejectCode, reason string) error { return &refusal{code, reason} }

func (r *refusal) Error() string { return r.reason }

// ioCode maps an error to a REJECT code.
func ioCode(err error) rejectCode {
	var r *refusal
	switch {
	case errors.As(err, &r):
		return r.code
	case isNoSpace(err), errors.Is(err, ErrNoSpace):
		return rejectNoSpace
	case errors.Is(err, ErrInvalidName):
		return rejectName
	}
	return rejectIO
}

// peerReason is the text a REJECT carries for err. A refusal and a name
// check speak only of the offer itself; any other error may hold a local
// path or OS detail, so the member gets a fixed sentence and the log keeps
// the rest.
func (ib *inbound) peerReason(err error) string {
	var r *refusal
	switch {
	case errors.As(err, &r):
		return r.reason
	case errors.Is(err, ErrInvalidName):
		return "unsafe or unportable name: " + nameProblem(err)
	case isNoSpace(err), errors.Is(err, ErrNoSpace):
		return fmt.Sprintf("no space left on %s's disk", ib.selfName())
	case errors.Is(err, ErrChecksum):
		return "the file did not match its checksums"
	}
	return fmt.Sprintf("%s could not store the file (see its log)", ib.selfName())
}

// verifyWhole checks the file hash against the block list. Every block
// held was hashed before it was written (checkChunk; for a streamed file,
// checked against the list when DONE brought it) or re-hashed from the
// partial (haveBlocks on resume), so the blocks matching a list that
// matches the file hash is the whole-file check, without re-reading 1 GiB.
func verifyWhole(meta *partialMeta) error {
	if fileHashOf(meta.Size, meta.BlockSize, meta.Blocks) != meta.FileHash {
		return fmt.Errorf("whole file: %w", ErrChecksum)
	}
	return nil
}

// completedEntry is one line of completed.json.
type completedEntry struct {
	Peer string     `json:"peer"`
	ID   transferID `json:"id"`
	At   time.Time  `json:"at"`
}

// haveBlocks re-hashes a partial and returns the blocks whose content
// matches the manifest: only those count as held.
func haveBlocks(f *os.File, meta *partialMeta) (bitmap, error) {
	have := newBitmap(meta.blocks()) // none held if streamed: nothing to check against
	buf := make([]byte, meta.BlockSize)
	for i := range meta.Blocks {
		n := blockLen(meta.Size, meta.BlockSize, uint32(i))
		_, err := f.ReadAt(buf[:n], int64(i)*int64(meta.BlockSize))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return have, err
		}
		if blockSum(buf[:n]) == meta.Blocks[i] {
			have.set(i)
		}
	}
	return have, nil
}
