package sync

import (
	"errors"
	"os"
	"strings"
)

// A chmod right after a file is written (a script made executable) often
// comes after its OFFER went out. The record keeps the file's current mode,
// each delivery the mode its member was offered; a member that verified the
// file with an older mode gets an ATTR with the new one, and the file moves
// to sent/ only once every member has it. The receiver changes the mode of
// the file it placed, if that file is still as it placed it.

// noteMode records a chmod of rec's file, seen as a close of the same
// content version: deliveries not offered yet carry the new mode, delivered
// ones are sent an ATTR.
func (o *outbound) noteMode(rec *outRecord, fi os.FileInfo) {
	mode := uint32(fi.Mode().Perm())
	o.mu.Lock()
	changed := rec.Type == entryFile && rec.Mode != mode && rec.To == "" // a box's mode is its own
	if changed {
		rec.Mode = mode
	}
	o.mu.Unlock()
	if !changed {
		return
	}
	if err := o.saveRecord(rec); err != nil {
		o.log.Warn("delivery state not saved; the file may be sent again after a restart", "path", rec.Rel, "err", err,
			"fix", fixState)
	}
	o.log.Info("mode changed", "path", rec.Rel, "mode", os.FileMode(mode).String())
	o.peers.wakeSenders()
}

// modeDue reports whether d holds rec verified with an older mode. Called
// with o.mu held.
func modeDue(rec *outRecord, d *delivery) bool {
	return rec.Type == entryFile && d.State == StateVerified && d.Mode != rec.Mode
}

// delivered reports whether d is done: verified, with the current mode.
// Called with o.mu held.
func delivered(rec *outRecord, d *delivery) bool {
	return d.State == StateVerified && !modeDue(rec, d)
}

// onAttr applies a delivered file's new mode, and ACKs in any case: a
// file the receiver no longer holds as placed keeps its mode, and the
// sender has nothing more to do about it.
func (r *receiver) onAttr(m *attrMsg) {
	k := inKey{r.p.id, m.ID} // only the author changes a mode: an ATTR is not signed
	if !r.in.isCompleted(k) {
		return // not placed (yet): the sender offers the file itself
	}
	if rel, err := r.in.applyMode(k, m.Mode); err != nil {
		r.in.log.Info("mode not changed", "peer", r.p.id, "id", m.ID.String(), "err", err)
	} else {
		r.in.changed(rel) // the kernel may cache the old mode
	}
	r.reply((&ackMsg{ID: m.ID}).encode())
}

// applyMode gives the file placed for transfer k the mode m, if that file
// is the latest placement of its path and still as placed, and returns
// its inbox-relative path.
func (ib *inbound) applyMode(k inKey, m uint32) (string, error) {
	pl, ok := ib.placementOf(k)
	if !ok {
		return "", errors.New("no placement of this transfer is known, or a newer version replaced it")
	}
	comps := strings.Split(pl.rel, "/")[1:] // below inbox/
	return pl.rel, ib.chmodPlaced(comps, pl.file, placedMode(m))
}

// placementOf finds the placement made for transfer k among the latest
// placement of each path. ATTRs are rare, so a scan is enough.
func (ib *inbound) placementOf(k inKey) (placement, bool) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	for key, pl := range ib.placed {
		if key.peer == k.peer && pl.id == k.id {
			return pl, true
		}
	}
	return placement{}, false
}
