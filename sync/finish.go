package sync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/mesh"
)

// finishIn verifies a complete partial, makes it durable and renames it
// into inbox/<peer-folder>/ without replacing anything, then ACKs.
func (e *Engine) finishIn(p *peerConn, t *inTransfer) {
	if err := verifyWhole(&t.meta); err != nil {
		if p.ctx.Err() == nil { // a disconnect keeps the partial for resume
			e.failIn(p, t, "verify file", err)
		}
		return
	}
	if err := e.makeDurable(t); err != nil {
		e.failIn(p, t, "sync file", err)
		return
	}
	failpoint("after-fsync")
	shown, err := e.placeFinal(t)
	if err != nil {
		e.failIn(p, t, "rename", err)
		return
	}
	e.changed(shown)
	e.completeIn(t)
	e.reply(p, (&ackMsg{ID: t.key.id}).encode())
	name := e.displayName(p.id)
	e.log.Info("file received", "peer", p.id, "name", name, "path", shown, "bytes", t.meta.Size)
	e.chatEvent(fmt.Sprintf("%s sent %s (%s) -> %s", name, path.Base(t.meta.Path), humanSI(t.meta.Size), shown))
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

// makeDurable sets mode and mtime, fsyncs and closes the partial.
func (e *Engine) makeDurable(t *inTransfer) error {
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
	e.mu.Lock()
	t.closeFile()
	e.mu.Unlock()
	mtime := fileTime(t.meta.MTime)
	return os.Chtimes(e.partPath(t.key), mtime, mtime)
}

// placeFinal renames the partial to inbox/<folder>/<dirs>/<name> and
// fsyncs the folder. It returns the inbox-relative path it chose.
func (e *Engine) placeFinal(t *inTransfer) (string, error) {
	folder, err := e.folderFor(t.key.peer)
	if err != nil {
		return "", err
	}
	parts, err := openDir(e.partsDir)
	if err != nil {
		return "", err
	}
	defer parts.close()
	dir, err := openDir(e.inboxDir)
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
func (e *Engine) completeIn(t *inTransfer) {
	e.mu.Lock()
	e.completed[t.key] = time.Now()
	delete(e.in, t.key)
	t.owner = nil
	e.mu.Unlock()
	if err := e.journalCompleted(t.key); err != nil {
		e.log.Warn("completed transfer not saved", "err", err)
	}
	os.Remove(e.metaPath(t.key))
}

// completedEntry is one line of completed.json.
type completedEntry struct {
	Peer string     `json:"peer"`
	ID   transferID `json:"id"`
	At   time.Time  `json:"at"`
}

// journalCompleted appends one completed ID to completed.jsonl: cheap per
// file, where rewriting the whole list would cost O(n) per file. New folds
// the journal into completed.json.
func (e *Engine) journalCompleted(k inKey) error {
	line, err := json.Marshal(completedEntry{Peer: k.peer.String(), ID: k.id, At: time.Now()})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(e.completedPath+"l", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
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
func (e *Engine) saveCompleted() error {
	cutoff := time.Now().Add(-e.cfg.CompletedTTL)
	e.mu.Lock()
	list := make([]completedEntry, 0, len(e.completed))
	for k, at := range e.completed {
		if at.Before(cutoff) {
			delete(e.completed, k)
			continue
		}
		list = append(list, completedEntry{Peer: k.peer.String(), ID: k.id, At: at})
	}
	e.mu.Unlock()
	if err := atomicfile.WriteJSON(e.completedPath, list); err != nil {
		return err
	}
	if err := os.Remove(e.completedPath + "l"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// loadCompleted reads completed.json and its journal at New.
func (e *Engine) loadCompleted() error {
	var list []completedEntry
	if err := atomicfile.ReadJSON(e.completedPath, &list); err != nil {
		e.log.Warn("completed transfers unreadable", "err", err)
		return nil
	}
	if data, err := os.ReadFile(e.completedPath + "l"); err == nil {
		for _, line := range bytes.Split(data, []byte("\n")) {
			var c completedEntry
			if json.Unmarshal(line, &c) == nil {
				list = append(list, c)
			}
		}
	}
	cutoff := time.Now().Add(-e.cfg.CompletedTTL)
	for _, c := range list {
		peer, err := mesh.ParsePeerID(c.Peer)
		if err != nil || c.At.Before(cutoff) {
			continue
		}
		e.completed[inKey{peer, c.ID}] = c.At
	}
	return nil
}

// partialFiles lists the sidecars in the partials folder.
func (e *Engine) partialFiles() ([]string, error) {
	return filepath.Glob(filepath.Join(e.partsDir, "*.json"))
}
