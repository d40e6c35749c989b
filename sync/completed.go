package sync

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/mesh"
)

// Completed inbound transfers: remembered for CompletedTTL in
// completed.json and its journal, so a replayed OFFER is answered with ACK
// and not a second copy.

// isCompleted reports whether transfer k was received and placed.
func (ib *inbound) isCompleted(k inKey) bool {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	_, done := ib.completed[k]
	return done
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

// completedEntry is one line of completed.json.
type completedEntry struct {
	Peer string     `json:"peer"`
	ID   transferID `json:"id"`
	At   time.Time  `json:"at"`
}
