package sync

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/mesh"
)

// A new version of a file a member sent before replaces, at each receiver,
// the file placed for the last version, unless the user changed that file
// (deliver.go placeName).

// oldTime is the mtime save gives a file: far from now, so that an edit at
// the receiver changes the mtime whatever the clock's granularity.
var oldTime = time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)

// save writes rel into fn's outbox as an editor saves: a temporary file,
// renamed over rel, reported as the file system reports it.
func (fn *fakeNode) save(rel string, data []byte) {
	fn.net.t.Helper()
	p := filepath.Join(fn.root, "outbox", filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		fn.net.t.Fatal(err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		fn.net.t.Fatal(err)
	}
	if err := os.Chtimes(tmp, oldTime, oldTime); err != nil {
		fn.net.t.Fatal(err)
	}
	fn.engine().OutboxClosed(rel + ".tmp")
	if err := os.Rename(tmp, p); err != nil {
		fn.net.t.Fatal(err)
	}
	fn.engine().OutboxRemoved(rel + ".tmp")
	fn.engine().OutboxClosed(rel)
}

// saveDelivered saves rel at a and waits until b has it at want and a has
// moved it to sent/.
func saveDelivered(a, b *fakeNode, rel string, data []byte, want string) {
	a.net.t.Helper()
	a.save(rel, data)
	b.waitFile(want, data)
	a.waitGone("outbox/" + rel)
}

// wantNames fails t unless dir holds exactly want (sorted).
func wantNames(t *testing.T, dir string, want ...string) {
	t.Helper()
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

// TestNewVersionReplaces: three saves of docs/doc.txt, each delivered
// before the next, leave one file at bob with the last content.
func TestNewVersionReplaces(t *testing.T) {
	for _, mode := range hashModes {
		t.Run(mode.name, func(t *testing.T) {
			_, a, b := pair(t, mode.edit)
			for i := range 3 {
				saveDelivered(a, b, "docs/doc.txt", randBytes(uint64(200+i), 1000+300*i), "inbox/alice/docs/doc.txt")
			}
			wantNames(t, filepath.Join(b.root, "inbox", "alice", "docs"), "doc.txt")
		})
	}
}

// TestChangedPlacementKept: once the user changed the file placed for the
// last version, the next version goes next to it under a numbered name
// (or under its own name, if the user removed it) and the user's file
// stays byte for byte; the version after that replaces meshfs's file, not
// the user's.
func TestChangedPlacementKept(t *testing.T) {
	v1 := randBytes(210, 700)
	tests := []struct {
		name     string
		change   func(t *testing.T, p string)
		user     []byte // what the user's doc.txt holds after change; nil: gone
		newName  string // where the next versions arrive
		wantLeft []string
	}{
		{"edited", appendTo, append(slices.Clone(v1), "my notes"...), "doc (1).txt", []string{"doc (1).txt", "doc.txt"}},
		{"edited, same size", overwriteStart, append([]byte("mine"), v1[4:]...), "doc (1).txt", []string{"doc (1).txt", "doc.txt"}},
		{"replaced", replaceWithMine, []byte("mine"), "doc (1).txt", []string{"doc (1).txt", "doc.txt"}},
		{"removed", removeFile, nil, "doc.txt", []string{"doc.txt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, a, b := pair(t, nil)
			saveDelivered(a, b, "doc.txt", v1, "inbox/alice/doc.txt")
			p := filepath.Join(b.root, "inbox", "alice", "doc.txt")
			tc.change(t, p)
			saveDelivered(a, b, "doc.txt", randBytes(211, 800), "inbox/alice/"+tc.newName)
			saveDelivered(a, b, "doc.txt", randBytes(212, 900), "inbox/alice/"+tc.newName)
			if tc.user != nil {
				if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, tc.user) {
					t.Errorf("the user's doc.txt = %d bytes, %v; want their %d bytes", len(got), err, len(tc.user))
				}
			}
			wantNames(t, filepath.Join(b.root, "inbox", "alice"), tc.wantLeft...)
		})
	}
}

func appendTo(t *testing.T, p string) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("my notes"); err != nil {
		t.Fatal(err)
	}
}

// overwriteStart changes the first bytes in place: same inode, same size,
// only the mtime tells.
func overwriteStart(t *testing.T, p string) {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("mine"), 0); err != nil {
		t.Fatal(err)
	}
}

// replaceWithMine saves another file over p as an editor does.
func replaceWithMine(t *testing.T, p string) {
	if err := os.WriteFile(p+".new", []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
}

func removeFile(t *testing.T, p string) {
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

// TestPlacementsSurviveRestart: the placements are read back at New, from
// the journal after the first restart and from completed.json (where New
// folded it) after the second.
func TestPlacementsSurviveRestart(t *testing.T) {
	n, a, b := pair(t, nil)
	saveDelivered(a, b, "d/doc.txt", randBytes(220, 500), "inbox/alice/d/doc.txt")
	for i := range 2 {
		n.cut(a, b)
		b.closeEngine()
		b.open()
		b.start()
		n.connect(a, b)
		saveDelivered(a, b, "d/doc.txt", randBytes(uint64(221+i), 600+i), "inbox/alice/d/doc.txt")
	}
	wantNames(t, filepath.Join(b.root, "inbox", "alice", "d"), "doc.txt")
}

// TestOtherSenderNeverReplaced: carol's next version of doc.txt never
// replaces alice's doc.txt, even with bob's index pointing at it (as a
// damaged state file could); and alice's Doc.txt, another path, is not a
// new version of her doc.txt.
func TestOtherSenderNeverReplaced(t *testing.T) {
	n := newFakeNet(t)
	a, b, c := n.addNode("alice", nil), n.addNode("bob", nil), n.addNode("carol", nil)
	for _, fn := range []*fakeNode{a, b, c} {
		fn.start()
	}
	n.connect(a, b)
	n.connect(c, b)
	n.connect(a, c)
	fromAlice := randBytes(230, 400)
	saveDelivered(a, b, "doc.txt", fromAlice, "inbox/alice/doc.txt")
	saveDelivered(c, b, "doc.txt", randBytes(231, 400), "inbox/carol/doc.txt")

	in := b.engine().in
	alices, ok := in.lastPlacement(a.id, "doc.txt")
	if !ok {
		t.Fatal("alice's doc.txt has no placement")
	}
	in.mu.Lock()
	in.placed[placeKey{c.id, "doc.txt"}] = alices
	in.mu.Unlock()
	fromCarol := randBytes(232, 400)
	saveDelivered(c, b, "doc.txt", fromCarol, "inbox/carol/doc (1).txt")

	other := randBytes(233, 400)
	saveDelivered(a, b, "Doc.txt", other, "inbox/alice/Doc (1).txt")
	b.waitFile("inbox/alice/doc.txt", fromAlice)
	wantNames(t, filepath.Join(b.root, "inbox", "alice"), "Doc (1).txt", "doc.txt")
}

// TestCompletedFormats: completed.json entries without a placement (the
// format before placements) still load as completed and allow no
// replacement; of two placements of one path the later wins, whatever
// their order in the files.
func TestCompletedFormats(t *testing.T) {
	n := newFakeNet(t)
	b := n.addNode("bob", nil)
	b.closeEngine()
	peer := mesh.PeerIDFromKey([]byte("alice"))
	now := time.Now().Truncate(time.Second)
	placed := func(id byte, at time.Time, rel string, ino uint64) completedEntry {
		return completedEntry{Peer: peer.String(), ID: transferID{id}, At: at,
			Path: "doc.txt", Placed: rel, Ino: ino, Size: 3, MTime: 9}
	}
	list := []completedEntry{
		{Peer: peer.String(), ID: transferID{1}, At: now},                  // old format
		{Peer: peer.String(), ID: transferID{2}, At: now, Path: "old.txt"}, // no identity
		placed(3, now.Add(-time.Minute), "inbox/alice/doc.txt", 7),         // superseded
		placed(4, now, "inbox/alice/doc (1).txt", 8),                       // the latest
		placed(5, now, "inbox/alice/../../etc/passwd", 9),                  // not clean
	}
	list[4].Path = "x.txt"
	if err := atomicfile.WriteJSON(filepath.Join(b.st, "completed.json"), list); err != nil {
		t.Fatal(err)
	}
	older, err := json.Marshal(placed(6, now.Add(-time.Hour), "inbox/alice/doc (2).txt", 10))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.st, "completed.jsonl"), append(older, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	b.open()
	in := b.engine().in
	for id := range byte(7) {
		if id > 0 && !in.isCompleted(inKey{peer, transferID{id}}) {
			t.Errorf("transfer %d not completed after load", id)
		}
	}
	pl, ok := in.lastPlacement(peer, "doc.txt")
	if !ok || pl.rel != "inbox/alice/doc (1).txt" || pl.file != (fileID{Ino: 8, Size: 3, MTime: 9}) {
		t.Errorf("placement of doc.txt = %+v, %v; want transfer 4's", pl, ok)
	}
	for _, p := range []string{"old.txt", "x.txt"} {
		if pl, ok := in.lastPlacement(peer, p); ok {
			t.Errorf("placement of %s = %+v, want none", p, pl)
		}
	}
}
