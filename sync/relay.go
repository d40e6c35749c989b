package sync

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// Passing files on. A member that placed a verified file of another member
// keeps a relay record for it: the author's signed manifest and where the
// file is. Its senders offer that file, as they offer the member's own, to
// every member whose receipt for it (receipts.go) has not come: so a file
// reaches a member its author cannot reach, or while its author is away,
// through anyone who has it, and the receiver checks it against the
// author's signature whoever sends it (signed.go). Two members offering
// the same file to a third at once is harmless: the receiver takes one and
// refuses the other as busy, and the later offer gets an ACK.
//
// A relay record goes when every member's receipt has come, when the file
// placed here changed (the user edited or removed it: it is no longer the
// author's), or RelayTTL after it was made.

// RelayTTL is how long a member offers a file it holds for another member.
const RelayTTL = 30 * 24 * time.Hour

// RelayDelay is how long a member that placed a file waits before it
// offers it to the members that lack it. Most get it from its author at
// the same time, and their receipts arrive within this; offering at once
// would only meet "busy" at each of them.
const RelayDelay = 2 * time.Second

// received is a transfer this member completed, as relaying it needs it.
type received struct {
	key    inKey       // author and transfer
	from   mesh.PeerID // the member it came from (has it)
	meta   partialMeta // manifest and the author's signature
	typ    entryType
	target string // a link's
	placed string // Root-relative path of the file placed; "" for a folder or link
	// partial: placed is the partial still being received (admit): it is
	// passed on as it comes in, and no receipt is due yet.
	partial bool
}

// relay reports whether rec passes on another member's file.
func (r *outRecord) relay() bool { return r.Author != "" }

// authorOf is the member whose file rec is.
func (o *outbound) authorOf(rec *outRecord) mesh.PeerID {
	if rec.relay() {
		id, _ := mesh.ParsePeerID(rec.Author)
		return id
	}
	return o.transport().ID()
}

// sourceOf is the file rec's blocks are read from.
func (o *outbound) sourceOf(rec *outRecord) string {
	if rec.Spool != "" {
		return filepath.Join(o.sealedDir, rec.Spool)
	}
	if rec.relay() {
		return filepath.Join(o.cfg.Root, filepath.FromSlash(rec.Src))
	}
	return filepath.Join(o.outboxDir, filepath.FromSlash(rec.Rel))
}

// passOn makes the relay record of a completed transfer, with a delivery
// for every member but the author, the member it came from and those
// whose receipt is known. Like the author's own record, it lists the
// members known when it is made.
func (o *outbound) passOn(rc received, holds func(inKey, mesh.PeerID) bool) {
	rec := &outRecord{ID: rc.key.id, Rel: rc.meta.Path, Type: rc.typ, Target: rc.target, Created: time.Now(),
		Mode: rc.meta.Mode, Replaces: rc.meta.Replaces, Author: rc.key.peer.String(), Src: rc.placed,
		Sig: rc.meta.Sig, AuthorMTime: rc.meta.MTime, Partial: rc.partial, To: rc.meta.To, Peers: map[string]*delivery{},
		Manifest: manifest{Hash: blockHashName, Size: int64(rc.meta.Size), BlockSize: int(rc.meta.BlockSize),
			FileHash: rc.meta.FileHash, Blocks: rc.meta.Blocks}}
	if rc.typ == entryFile && !rc.partial {
		fi, err := os.Stat(o.sourceOf(rec))
		if err != nil {
			return
		}
		rec.Version = versionOf(fi)
	}
	self := o.transport().ID()
	for _, p := range o.transport().Peers() {
		if p.ID == self || p.ID == rc.key.peer || p.ID == rc.from || holds(rc.key, p.ID) {
			continue
		}
		d := &delivery{State: StateQueued, Name: safeName(p.Name)}
		if !rc.partial {
			// The author, or whoever passes it on while it comes in, is
			// likely at it: offer only if no receipt came meanwhile.
			d.State, d.retryAt = StateRefused, time.Now().Add(RelayDelay)
		}
		rec.Peers[p.ID.String()] = d
	}
	if len(rec.Peers) == 0 {
		return
	}
	o.mu.Lock()
	old := o.records[rec.ID]
	o.mu.Unlock()
	switch {
	case old == nil:
		o.addRecord(rec)
	case old.Partial && !rec.Partial:
		o.replaceRelay(old, rec)
	}
}

// replaceRelay puts the record of the placed copy in the place of the one
// that passed on the partial. Its flights stop at their next block and the
// new record offers again at once: the receivers resume where they are.
// Members that got it meanwhile stay delivered.
func (o *outbound) replaceRelay(old, rec *outRecord) {
	o.mu.Lock()
	for key, d := range old.Peers {
		if nd := rec.Peers[key]; nd != nil && d.State == StateVerified {
			nd.State, nd.Mode = StateVerified, d.Mode
		}
	}
	// Detached, not cancelled: its flights go on to the end, reading the
	// placed file through the descriptor they hold, so no block is sent
	// twice; the new record's offer to those members then gets an ACK.
	old.detached = true
	delete(o.records, old.ID)
	o.order = slices.DeleteFunc(o.order, func(x *outRecord) bool { return x == old })
	o.mu.Unlock()
	o.addRecord(rec)
}

// dropRelay forgets a relay record.
func (o *outbound) dropRelay(rec *outRecord) {
	o.mu.Lock()
	if o.records[rec.ID] != rec {
		o.mu.Unlock()
		return
	}
	o.dropRecordLocked(rec)
	o.mu.Unlock()
	o.log.Debug("file no longer passed on", "path", rec.Src, "id", rec.ID.String())
	o.removeRecordFile(rec.ID)
	o.dropCarried(rec)
}

// dropCarried removes the box a relay record carried for another member
// (private_files.go): its recipient has it, or nobody is left to take it.
func (o *outbound) dropCarried(rec *outRecord) {
	if rec.To != "" && !rec.Partial && strings.HasPrefix(rec.Src, carriedPrefix) {
		os.Remove(filepath.Join(o.cfg.Root, filepath.FromSlash(rec.Src)))
	}
}

// noteReceipt records that member who holds transfer k: its delivery of
// our file, or of one we pass on, is done, and the file moves on when
// every member has it (finishRecord). It reports whether anything changed.
func (o *outbound) noteReceipt(k inKey, who mesh.PeerID) bool {
	o.mu.Lock()
	rec := o.records[k.id]
	var d *delivery
	if rec != nil && o.authorOf(rec) == k.peer {
		d = rec.Peers[who.String()]
	}
	if d == nil || d.State == StateVerified {
		o.mu.Unlock()
		return false
	}
	// The member has the file with the mode it was offered with: a later
	// chmod here still goes to it as an ATTR (modeDue).
	d.State, d.Final, d.Reason, d.Mode = StateVerified, false, "", rec.Version.Mode&0o777
	if rec.relay() {
		d.Mode = rec.Mode
	}
	o.mu.Unlock()
	if err := o.saveRecord(rec); err != nil {
		o.log.Warn("delivery state not saved; the file may be offered again after a restart", "path", rec.Rel,
			"err", err, "fix", fixState)
	}
	o.jobs.push(job{kind: jobFinish, id: rec.ID})
	o.peers.wakeSenders()
	return true
}

// received signs the receipt of a transfer this member completed, spreads
// it, and passes the file on to the members that lack it.
func (e *Engine) received(rc received) {
	if rc.partial {
		e.out.passOn(rc, e.receipts.has)
		return
	}
	mine := e.in.mine(&rc.meta) // a private file opened here: nothing of it is passed on
	t := e.transport()
	r := record.Receipt{Receiver: t.ID(), Author: rc.key.peer, ID: rc.key.id}
	if err := r.SignWith(t.Signer()); err != nil {
		e.log.Warn("receipt not signed", "err", err, "fix", "nothing: the file is offered again and acknowledged")
	} else {
		e.toRoom(roomJob{receipt: &r})
	}
	if !mine {
		e.out.passOn(rc, e.receipts.has)
	}
}

// uploadsFullLocked reports whether a large file is already going to as
// many members as it may from here at once (Config.FileUploads; o.mu
// held). The others wait: the members it goes to pass it on while it
// comes in, so the file leaves this member's uplink about once instead of
// once per member, and a slow uplink serves four members almost as fast
// as one.
func (o *outbound) uploadsFullLocked(r *outRecord) bool {
	if r.Type != entryFile || r.Manifest.Size < o.cfg.StreamMinSize {
		return false
	}
	n := 0
	for _, d := range r.Peers {
		if d.owner != nil {
			n++
		}
	}
	return n >= o.cfg.FileUploads
}

// errNotHere: a file passed on while it comes in is not coming in now.
var errNotHere = errors.New("not coming in here now")

// comingIn reports whether the file a partial relay record passes on is
// being received here now: offering it otherwise would hold up the member
// that takes it from us.
func (o *outbound) comingIn(rec *outRecord) bool {
	held, gone, idle, _ := o.blocks(inKey{o.authorOf(rec), rec.ID}, 0)
	return held || !gone && !idle
}

// slotFreed wakes every sender when a delivery of a large file ends or
// goes back to the queue: the senders that skipped it while its uploads
// were full (uploadsFullLocked) sleep until woken.
func (o *outbound) slotFreed(r *outRecord) {
	if r.Type == entryFile && r.Manifest.Size >= o.cfg.StreamMinSize {
		o.peers.wakeSenders()
	}
}

// awaitBlock waits until block i of the partial rec passes on is held
// here, or fails: the transfer ended without the file (errChanged: the
// record goes), it is not coming in now, or nothing came for InboundIdle.
// A failed flight is offered again later, and the member that took it
// from us meanwhile takes it from someone else.
func (s *sender) awaitBlock(rec *outRecord, i int) error {
	k := inKey{s.o.authorOf(rec), rec.ID}
	idle := time.NewTimer(s.o.cfg.InboundIdle)
	defer idle.Stop()
	for {
		held, gone, stalled, wait := s.o.blocks(k, i)
		switch {
		case held:
			return nil
		case gone:
			return fmt.Errorf("block %d of %s: %w", i, rec.Rel, errChanged)
		case stalled:
			return fmt.Errorf("block %d of %s: %w", i, rec.Rel, errNotHere)
		}
		select {
		case <-wait:
		case <-s.p.ctx.Done():
			return s.p.ctx.Err()
		case <-idle.C:
			return fmt.Errorf("block %d of %s not received here for %v", i, rec.Rel, s.o.cfg.InboundIdle)
		}
	}
}
