package sync

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// A private file (put in to/<member>/) goes to its recipient as a box
// (private_box.go) whose manifest names the recipient (record.File.To).
// Every member takes and checks the box like any file, so it spreads the
// way files do, from the author or from any member that holds it. The
// recipient opens it and places the file inside under inbox/<author>/; any
// other member keeps the box, unread, in the carried folder and passes it
// on until the recipient's receipt says it has it.

// carriedName is the folder of boxes carried for others, inside the
// partials folder: hidden from the tree, on the inbox's filesystem.
const carriedName = "carried"

// carriedPrefix starts the Root-relative path of every carried box.
var carriedPrefix = path.Join("inbox", partialsName, carriedName) + "/"

// mine reports whether m is a private file to this member. It takes no
// lock, so it may run under ib.mu.
func (ib *inbound) mine(m *partialMeta) bool {
	t := ib.transport()
	return m.To != "" && t != nil && m.to() == t.ID()
}

// placePrivate places a verified box: the file inside it for this member,
// else the box itself among the carried ones. An error wrapping errBox
// means the box cannot be opened here although it names this member: it
// is removed.
func (ib *inbound) placePrivate(t *inTransfer) (string, error) {
	if !ib.mine(&t.meta) {
		return ib.placeCarried(t)
	}
	h, err := ib.openInto(t)
	if errors.Is(err, errBox) {
		os.Remove(ib.partPath(t.key))
		return "", err
	}
	if err != nil {
		return "", err
	}
	shown, err := ib.placeAs(t, partBase(t.key)+".open", h.Path)
	if err != nil {
		os.Remove(ib.openPath(t.key))
		return "", err
	}
	os.Remove(ib.partPath(t.key))
	if err := markPrivate(filepath.Join(ib.cfg.Root, filepath.FromSlash(shown)), ib.peerName(t.key.peer)); err != nil {
		ib.log.Debug("private file not marked", "path", shown, "err", err)
	}
	return shown, nil
}

// openPath is where the file opened from a box is written before it is
// placed.
func (ib *inbound) openPath(k inKey) string {
	return filepath.Join(ib.partsDir, partBase(k)+".open")
}

// openInto opens t's box and writes the file inside to openPath, durable,
// with its mode and mtime. The header's path is checked like an offered
// path.
func (ib *inbound) openInto(t *inTransfer) (boxHeader, error) {
	box, err := os.Open(ib.partPath(t.key))
	if err != nil {
		return boxHeader{}, err
	}
	defer box.Close()
	want := boxHeader{Author: t.key.peer, To: t.meta.to(), ID: t.key.id}
	h, r, err := openBox(box, ib.transport().SealKey(), want)
	if err != nil {
		return h, err
	}
	if h.Path, err = validatePath(h.Path); err != nil {
		return h, fmt.Errorf("%w: %w", errBox, err)
	}
	out, err := os.OpenFile(ib.openPath(t.key), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return h, err
	}
	err = copyBox(out, h, r)
	if err == nil {
		err = out.Chmod(placedMode(h.Mode))
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		mtime := fileTime(h.MTime)
		err = os.Chtimes(ib.openPath(t.key), mtime, mtime)
	}
	if err != nil {
		os.Remove(ib.openPath(t.key))
	}
	return h, err
}

// placeCarried moves a box for another member into the carried folder,
// where the relay record made of it reads it (relay.go).
func (ib *inbound) placeCarried(t *inTransfer) (string, error) {
	dir := filepath.Join(ib.partsDir, carriedName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	name := partBase(t.key) + ".box"
	if err := os.Rename(ib.partPath(t.key), filepath.Join(dir, name)); err != nil {
		return "", err
	}
	parts, err := openDir(dir)
	if err != nil {
		return "", err
	}
	defer parts.close()
	if err := parts.sync(); err != nil {
		return "", fmt.Errorf("sync folder: %w", err)
	}
	shown := carriedPrefix + name
	if id, _, err := parts.statName(name); err == nil {
		ib.notePlaced(t, shown, id)
	}
	return shown, nil
}

// On the author's side a private file's record has the engine path
// "/to/<name>/<rel>" (privateRel): the leading slash keeps it apart from
// every outbox path, which is relative, so the maps and lists keyed by
// path serve both. The file is sealed into a box in STATE/sync/sealed/
// first; the record sends the box (sourceOf), its Version is the box's,
// and Plain is the identity of the file in to/<name>/ that the rescan and
// later saves compare with. It is done once its member has it (allVerified),
// and the file moves to sent/to/<name>/<rel>.

// privateRel is the engine path of rel in to/<name>/.
func privateRel(name, rel string) string { return "/to/" + name + "/" + rel }

// privateParts splits an engine path: the member's name and the path in
// its folder, for a private file's.
func privateParts(rel string) (name, inBox string, ok bool) {
	rest, ok := strings.CutPrefix(rel, "/to/")
	if !ok {
		return "", "", false
	}
	name, inBox, ok = strings.Cut(rest, "/")
	return name, inBox, ok && name != ""
}

// cleanAny is cleanRel for an outbox path or a private one.
func cleanAny(rel string) (string, bool) {
	name, inBox, ok := privateParts(rel)
	if !ok {
		return cleanRel(rel)
	}
	if c, ok := cleanRel(inBox); ok && safeName(name) == name {
		return privateRel(name, c), true
	}
	return "", false
}

// diskPath is where the file of an engine path is: under outbox/, or under
// to/<name>/.
func (o *outbound) diskPath(rel string) string {
	if name, inBox, ok := privateParts(rel); ok {
		return filepath.Join(o.toDir, name, filepath.FromSlash(inBox))
	}
	return filepath.Join(o.outboxDir, filepath.FromSlash(rel))
}

// relOf is the engine path of a file under outbox/ or to/<name>/.
func (o *outbound) relOf(abs string) (string, bool) {
	if r, err := filepath.Rel(o.toDir, abs); err == nil && r != "." && !strings.HasPrefix(r, "..") {
		name, inBox, _ := strings.Cut(filepath.ToSlash(r), "/")
		return privateRel(name, inBox), inBox != ""
	}
	r, err := filepath.Rel(o.outboxDir, abs)
	return filepath.ToSlash(r), err == nil && r != "." && !strings.HasPrefix(r, "..")
}

// nameOf is the part of an engine path that a receiver sees as the path.
func nameOf(rel string) string {
	if _, inBox, ok := privateParts(rel); ok {
		return inBox
	}
	return rel
}

// topOf is the top-level name of an engine path: the first component in
// outbox/ or in to/<name>/. Files under one top move to sent/ together.
func topOf(rel string) string {
	if name, inBox, ok := privateParts(rel); ok {
		first, _, _ := strings.Cut(inBox, "/")
		return privateRel(name, first)
	}
	top, _, _ := strings.Cut(path.Clean(rel), "/")
	return top
}

// boxName is the path a private file's OFFER names: its box, not the file.
func (r *outRecord) boxName() string { return r.ID.String() + ".box" }

// identity is the version of the file the user put in the box (outbox/
// or to/<name>/) that this record sends.
func (r *outRecord) identity() fileVersion {
	if r.Plain != nil {
		return *r.Plain
	}
	return r.Version
}

// ToClosed is OutboxClosed for to/<name>/ (see fs.Syncer). It never blocks.
func (e *Engine) ToClosed(name, rel string) {
	e.out.jobs.push(job{kind: jobClosed, rel: privateRel(name, rel)})
}

// ToRemoved is OutboxRemoved for to/<name>/. It never blocks.
func (e *Engine) ToRemoved(name, rel string) {
	e.out.jobs.push(job{kind: jobRemoved, rel: privateRel(name, rel)})
}

// ToDelivery is Delivery for to/<name>/rel. It reads memory only.
func (e *Engine) ToDelivery(name, rel string) (map[string]string, bool) {
	rel, ok := cleanAny(privateRel(name, rel))
	if !ok {
		return nil, false
	}
	return e.out.delivery(rel)
}

// ToUnsentReason is UnsentReason for to/<name>/rel. It reads memory only.
func (e *Engine) ToUnsentReason(name, rel string) string {
	rel, ok := cleanAny(privateRel(name, rel))
	if !ok {
		return ""
	}
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	return e.out.unsent[rel]
}

// sealRecord seals the file at abs into a box for the member whose folder
// it is in and builds the record that sends the box to every member: its
// member opens it, the others carry it.
func (o *outbound) sealRecord(rel, abs string) (*outRecord, error) {
	name, inBox, _ := privateParts(rel)
	to, ok := o.memberNamed(name)
	if !ok {
		return nil, fmt.Errorf("%s is not a member: %w", name, ErrNotMember)
	}
	t := o.transport()
	toKey, err := t.MemberKey(to)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	src, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, err
	}
	plain := versionOf(fi)
	var id transferID
	rand.Read(id[:])
	h := boxHeader{Author: t.ID(), To: to, ID: id, Path: inBox, Mode: plain.Mode & 0o777, MTime: plain.MTime, Size: uint64(fi.Size())}
	spool := filepath.Join(o.sealedDir, id.String()+".box")
	box, err := o.writeBox(spool, h, src, toKey)
	if err != nil {
		return nil, err
	}
	defer box.Close()
	if after, err := src.Stat(); err != nil || !versionOf(after).sameFile(plain) {
		os.Remove(spool)
		return nil, errChanged
	}
	bi, err := box.Stat()
	if err != nil {
		os.Remove(spool)
		return nil, err
	}
	m, v, err := hashFile(o.ctx, box, chooseBlockSize(bi.Size(), o.cfg.BlockSize))
	if err != nil {
		os.Remove(spool)
		return nil, err
	}
	rec := o.recordOf(rel, v, m)
	rec.ID, rec.To, rec.Plain, rec.Spool = id, to.String(), &plain, filepath.Base(spool)
	rec.Mode = 0o600
	// The others carry the box only for a member that does not take it at
	// once (away, or out of reach): they wait RelayDelay, as a relay's
	// deliveries do, and the record is done, theirs dropped, as soon as
	// the member has it.
	for key, d := range rec.Peers {
		if key != rec.To {
			d.State, d.retryAt = StateRefused, time.Now().Add(RelayDelay)
		}
	}
	return rec, nil
}

// writeBox seals src into a new box file at spool, durable, and returns it
// open for reading from its start.
func (o *outbound) writeBox(spool string, h boxHeader, src io.Reader, toKey ed25519.PublicKey) (*os.File, error) {
	if err := os.MkdirAll(o.sealedDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(spool, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	err = sealBox(f, h, src, o.transport().SealKey().Public().(ed25519.PublicKey), toKey)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(spool)
		return nil, err
	}
	return f, nil
}

// shownRel is an engine path as status shows it: an outbox path as it is,
// a private one as to/<name>/<rel>.
func shownRel(rel string) string { return strings.TrimPrefix(rel, "/") }

// treeRel is the Root-relative path of an engine path, for OnChange.
func treeRel(rel string) string {
	if _, _, ok := privateParts(rel); ok {
		return strings.TrimPrefix(rel, "/")
	}
	return path.Join("outbox", rel)
}

// writing asks the frontend whether a file at or below the engine path
// rel is open for writing.
func (o *outbound) writing(rel string) bool {
	if name, inBox, ok := privateParts(rel); ok {
		return o.cfg.WritingTo != nil && o.cfg.WritingTo(name, inBox)
	}
	return o.cfg.Writing != nil && o.cfg.Writing(rel)
}
