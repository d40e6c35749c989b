package sync

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/mesh"
)

// Completed inbound transfers: remembered for CompletedTTL in
// completed.json and its journal, so a replayed OFFER is answered with ACK
// and not a second copy, and with where the latest file of each path was
// placed, so a chmod the sender makes later (ATTR, attr.go), or a new
// version that replaces this transfer (deliver.go placeName), reaches that
// file while it is as placed. Entries written before placements were
// recorded load as before; an ATTR for their files changes nothing.

// placeKey is one file of a sender: its peer and its path in the sender's
// outbox (validated, NFC).
type placeKey struct {
	peer mesh.PeerID
	path string
}

// placement is where a completed transfer's file was put and what it was
// then.
type placement struct {
	id   transferID
	at   time.Time // when the transfer completed
	rel  string    // inbox-relative, as placeFinal returns it
	file fileID
}

// isCompleted reports whether transfer k was received and placed.
func (ib *inbound) isCompleted(k inKey) bool {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	_, done := ib.completed[k]
	return done
}

// notePlaced keeps where placeFinal put t's file, for completeIn.
func (ib *inbound) notePlaced(t *inTransfer, rel string, file fileID) {
	ib.mu.Lock()
	t.placed = &placement{id: t.key.id, rel: rel, file: file}
	ib.mu.Unlock()
}

// lastPlacement returns the latest placement of peer's file p.
func (ib *inbound) lastPlacement(peer mesh.PeerID, p string) (placement, bool) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	pl, ok := ib.placed[placeKey{peer, p}]
	return pl, ok
}

// notePlacementLocked indexes pl under k unless a later placement of k is
// known (journal lines may follow completed.json in any order of time).
func (ib *inbound) notePlacementLocked(k placeKey, pl placement) {
	if old, ok := ib.placed[k]; ok && pl.at.Before(old.at) {
		return
	}
	ib.placed[k] = pl
}

// completeIn remembers the transfer as done, with its placement, and
// removes its sidecar. A crash before this leaves a sidecar without a
// partial, which loadPartials also reads as done (without a placement).
func (ib *inbound) completeIn(t *inTransfer, from mesh.PeerID) {
	now := time.Now()
	ib.mu.Lock()
	rc := received{key: t.key, from: from, meta: t.meta, typ: entryFile}
	if t.placed != nil {
		rc.placed = t.placed.rel
	}
	ib.completed[t.key] = now
	entry := completedEntry{Peer: t.key.peer.String(), ID: t.key.id, At: now}
	if pl := t.placed; pl != nil {
		pl.at = now
		ib.notePlacementLocked(placeKey{t.key.peer, t.meta.Path}, *pl)
		entry.setPlacement(t.meta.Path, *pl)
	}
	delete(ib.transfers, t.key)
	clear(t.sources)
	t.notifyLocked()
	ib.mu.Unlock()
	if err := ib.journalCompleted(entry); err != nil {
		ib.log.Warn("received file not recorded; it may be received again after a restart", "peer", t.key.peer,
			"member", ib.peers.displayName(t.key.peer), "path", t.meta.Path, "err", err, "fix", fixState)
	}
	os.Remove(ib.metaPath(t.key))
	ib.forgetFetching(t.key)
	if rc.placed != "" { // else its identity is unknown: not passed on
		ib.done(rc)
	}
}

// journalCompleted appends one completed transfer to completed.jsonl:
// cheap per file, where rewriting the whole list would cost O(n) per file.
// New folds the journal into completed.json.
func (ib *inbound) journalCompleted(entry completedEntry) error {
	line, err := json.Marshal(entry)
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

// saveCompleted stores the completed transfers younger than CompletedTTL,
// with the latest placement of each path, in completed.json and empties
// the journal.
func (ib *inbound) saveCompleted() error {
	cutoff := time.Now().Add(-ib.cfg.CompletedTTL)
	ib.mu.Lock()
	latest := ib.latestPlacementsLocked(cutoff)
	list := make([]completedEntry, 0, len(ib.completed))
	for k, at := range ib.completed {
		if at.Before(cutoff) {
			delete(ib.completed, k)
			continue
		}
		entry := completedEntry{Peer: k.peer.String(), ID: k.id, At: at}
		if pk, ok := latest[k]; ok {
			entry.setPlacement(pk.path, ib.placed[pk])
		}
		list = append(list, entry)
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

// latestPlacementsLocked drops placements older than cutoff and maps the
// transfer of each remaining one to its key.
func (ib *inbound) latestPlacementsLocked(cutoff time.Time) map[inKey]placeKey {
	latest := make(map[inKey]placeKey, len(ib.placed))
	for pk, pl := range ib.placed {
		if pl.at.Before(cutoff) {
			delete(ib.placed, pk)
			continue
		}
		latest[inKey{pk.peer, pl.id}] = pk
	}
	return latest
}

// loadCompleted reads completed.json and its journal at New.
func (ib *inbound) loadCompleted() error {
	var list []completedEntry
	if err := atomicfile.ReadJSON(ib.completedPath, &list); err != nil {
		ib.log.Warn("list of received files unreadable", "err", err,
			"fix", "nothing: at worst a file is received a second time")
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
		if pl, ok := c.placement(); ok {
			ib.notePlacementLocked(placeKey{peer, c.Path}, pl)
		}
	}
	return nil
}

// completedEntry is one line of completed.json. The placement fields came
// later: older entries lack them, and a file without them is never
// replaced by its next version.
type completedEntry struct {
	Peer string     `json:"peer"`
	ID   transferID `json:"id"`
	At   time.Time  `json:"at"`

	Path   string `json:"path,omitempty"`   // the sender's path
	Placed string `json:"placed,omitempty"` // inbox-relative path of the file placed
	Ino    uint64 `json:"ino,omitempty"`    // and its identity then (fileID)
	Size   uint64 `json:"size,omitempty"`
	MTime  int64  `json:"mtime_ns,omitempty"`
}

// setPlacement records that the transfer's file, senderPath at its
// sender, was placed as pl.
func (c *completedEntry) setPlacement(senderPath string, pl placement) {
	c.Path, c.Placed = senderPath, pl.rel
	c.Ino, c.Size, c.MTime = pl.file.Ino, pl.file.Size, pl.file.MTime
}

// placement returns the entry's placement, if it has a usable one: a
// state file edited into a path that is not plain is ignored.
func (c *completedEntry) placement() (placement, bool) {
	base := path.Base(c.Placed)
	if c.Path == "" || c.Ino == 0 || c.Placed != path.Clean(c.Placed) || base == "." || base == ".." || base == "/" {
		return placement{}, false
	}
	return placement{id: c.ID, at: c.At, rel: c.Placed, file: fileID{Ino: c.Ino, Size: c.Size, MTime: c.MTime}}, true
}
