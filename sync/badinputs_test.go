package sync

// The transfer half of the adversarial-peer harness: one t.Run per row
// 26-46 and 52-60 of docs/bad-inputs.md. mallory is a member with no engine (the evil
// peer of evil_test.go) speaking the transfer protocol by hand to bob.
// After each row bob must still take a good file from mallory, his open
// files and goroutines must be back near the baseline, and no file may
// exist outside inbox/<peer>/ (or the hidden partials folder).

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/meshfs/meshfs/internal/testutil"
)

type syncVictim struct {
	n          *fakeNet
	b          *fakeNode
	ev         *evilPeer
	fds, gor   int
	nextID     atomic.Uint32
	folders    []string // inbox folders evil peers may fill
	inbox      chan any // mallory's replies (see unblock)
	aliveCount int
}

func newSyncVictim(t *testing.T) *syncVictim {
	n := newFakeNet(t)
	b := n.addNode("bob", func(c *Config) { c.MaxFileSize = 1 << 20; c.MaxInboundPerPeer = 4 })
	b.start()
	v := &syncVictim{n: n, b: b, folders: []string{"mallory"}}
	v.ev = newEvil(t, n, "mallory", b)
	v.unblock(t)
	v.alive(t) // warm up: folders made, workers started
	runtime.GC()
	v.fds, v.gor = openFDs(t), runtime.NumGoroutine()
	return v
}

// unblock moves ev's replies into v.inbox, an effectively unbounded
// buffer, so that replies nobody waits for (late answers of an earlier
// row) never stall bob's link to mallory.
func (v *syncVictim) unblock(t *testing.T) {
	v.inbox = make(chan any, 1<<16)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case m := <-v.ev.replies:
				if o, ok := m.(*offerMsg); ok && o.Author != v.b.id {
					// A file of another evil peer that bob passes on:
					// mallory says she has it, so rows see bob's own only.
					v.ev.SendBytes(v.ev.t.Context(), v.b.id, (&ackMsg{ID: o.ID}).encode())
					continue
				}
				v.inbox <- m
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() { v.n.shutdown(); close(stop); <-done }) // links first: they may be blocked on ev.replies
}

// id returns a fresh transfer ID.
func (v *syncVictim) id() transferID {
	n := v.nextID.Add(1)
	return transferID{0xb1, byte(n >> 8), byte(n)}
}

// replyFor reads replies until one concerns id (others are late answers
// to an earlier row).
func (v *syncVictim) replyFor(t *testing.T, id transferID) any {
	t.Helper()
	m := v.replyWithin(t, id, 5*time.Second)
	if m == nil {
		t.Fatalf("no reply for transfer %x", id[:3])
	}
	return m
}

// replyWithin is replyFor that gives nil after d.
func (v *syncVictim) replyWithin(t *testing.T, id transferID, d time.Duration) any {
	t.Helper()
	timeout := time.After(d)
	for {
		var m any
		select {
		case m = <-v.inbox:
		case <-timeout:
			return nil
		}
		switch m := m.(type) {
		case *acceptMsg:
			if m.ID == id {
				return m
			}
		case *rejectMsg:
			if m.ID == id {
				return m
			}
		case *ackMsg:
			if m.ID == id {
				return m
			}
		}
	}
}

// offer sends data as path and, if accepted, every block and DONE; it
// returns the final reply (ACK or REJECT).
func (v *syncVictim) offer(t *testing.T, path string, data []byte) any {
	t.Helper()
	return v.offerMsg(t, offerOf(v.id(), path, data), data)
}

// offerMsg is offer with the OFFER made by the caller.
func (v *syncVictim) offerMsg(t *testing.T, m *offerMsg, data []byte) any {
	t.Helper()
	v.ev.sendTo(v.b, m)
	r := v.replyFor(t, m.ID)
	if _, ok := r.(*acceptMsg); !ok {
		return r
	}
	sendAll(v.ev, v.b, m.ID, data)
	return v.replyFor(t, m.ID)
}

// alive: a good file from mallory still arrives.
func (v *syncVictim) alive(t *testing.T) {
	t.Helper()
	v.aliveCount++
	data := []byte(fmt.Sprintf("alive %d", v.aliveCount))
	name := fmt.Sprintf("alive-%d.txt", v.aliveCount)
	if r, ok := v.offer(t, name, data).(*ackMsg); !ok {
		t.Fatalf("bob refused a good file: %+v", r)
	}
	v.b.waitFile("inbox/mallory/"+name, data)
}

func (v *syncVictim) check(t *testing.T) {
	t.Helper()
	v.alive(t)
	if err := testutil.WaitFor(effectTimeout, func() error {
		if fds := openFDs(t); fds > v.fds+4 {
			return fmt.Errorf("open files %d, baseline %d", fds, v.fds)
		}
		if g := runtime.NumGoroutine(); g > v.gor+8 {
			return fmt.Errorf("goroutines %d, baseline %d", g, v.gor)
		}
		return nil
	}); err != nil {
		t.Errorf("resources not bounded: %v", err)
	}
	v.noFileOutside(t)
}

// noFileOutside: every file under bob's tree is under inbox/<folder>/ for
// one of the evil peers' folders, or a hidden partial.
func (v *syncVictim) noFileOutside(t *testing.T) {
	t.Helper()
	filepath.Walk(v.b.root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(v.b.root, p)
		if isUnder(rel, filepath.Join("inbox", partialsName)) {
			return nil
		}
		for _, f := range v.folders {
			if isUnder(rel, filepath.Join("inbox", f)) {
				return nil
			}
		}
		t.Errorf("file outside inbox/<peer>/: %s", rel)
		return nil
	})
}

// inboxNames lists the names under inbox/mallory/.
func (v *syncVictim) inboxNames() []string {
	var out []string
	base := filepath.Join(v.b.root, "inbox", "mallory")
	filepath.Walk(base, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(base, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// wantRejected offers each path and requires REJECT name.
func (v *syncVictim) wantRejected(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		m := offerOf(v.id(), p, []byte("x"))
		if _, err := decodeMessage(m.encode()); err != nil {
			continue // refused by the decoder: bob never sees it
		}
		switch r := v.offer(t, p, []byte("x")).(type) {
		case *rejectMsg:
			if r.Code != rejectName && r.Code != rejectTooBig {
				t.Errorf("%q: REJECT %v, want a name rejection", p, r.Code)
			}
		default:
			t.Errorf("%q: accepted (%T), want REJECT", p, r)
		}
	}
}

func TestBadInputsSync(t *testing.T) {
	v := newSyncVictim(t)
	rows := []struct {
		name string
		run  func(t *testing.T, v *syncVictim)
	}{
		{"row 26: traversal, absolute, empty and backslash names", row26Traversal},
		{"row 27: NUL, newline, pipe, control, ESC, zero-width, bidi", row27Controls},
		{"row 28: name of 256+ bytes, 10 KB, invalid UTF-8", row28Long},
		{"row 29: Windows-hostile names", row29Windows},
		{"row 30: README vs readme, NFC vs NFD", row30Collisions},
		{"row 31: hostile peer display names", row31PeerNames},
		{"row 32: symlink planted in inbox/<peer>/", row32Symlink},
		{"row 33: declared size negative, huge, over quota, 0 with chunks", row33Sizes},
		{"row 34: chunk beyond size, bad index, unknown or foreign ID", row34Chunks},
		{"row 35: block hash mismatch", row35BlockHash},
		{"row 36: wrong whole-file hash", row36FileHash},
		{"row 37: manifest with 10^9 block hashes", row37Manifest},
		{"row 38: replayed transfer ID, second OFFER for an active ID", row38Replay},
		{"row 39: chunks reordered and duplicated", row39Reorder},
		{"row 40: thousands of concurrent OFFERs", row40ManyOffers},
		{"row 41: sender disconnects mid-transfer forever", row41Abandon},
		{"row 42: disk full mid-transfer", row42DiskFull},
		{"row 43: crash between write and rename", row43Crash},
		{"row 44: same name offered twice", row44SameName},
		{"row 45: FIFO, device and symlink in outbox", row45OutboxSpecial},
		{"row 46: many small files dropped at once", row46ManyFiles},
		{"row 52: zero CHUNK for a block that is not zeros", row52ZeroChunk},
		{"row 53: links out of the inbox, and files through a link", row53Links},
		{"row 54: piece beyond its block's end", row54PieceBeyond},
		{"row 55: pieces out of order", row55PieceOrder},
		{"row 56: block whose pieces hash wrong", row56PieceHash},
		{"row 57: new versions replacing what they may not", row57Replaces},
		{"row 58: forged, altered, replayed, truncated and revoked chat records", row58Records},
		{"row 59: files passed on unsigned, forged, altered, streamed or revoked; forged receipts", row59Manifests},
		{"row 60: FETCHING out of bounds, about a transfer not ours, from a member without a delivery", row60Fetching},
		{"row 61: private lines misaddressed, redirected, stolen into another record, or in the clear", row61Private},
		{"row 62: private files misaddressed, stolen into another record, to their author, or carried for another", row62PrivateFiles},
	}
	parent := t
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			// Every helper, the fake network's and the evil peer's, fails
			// this row and only it: a failing row must not stop the rows
			// after it from running and reporting.
			v.n.t, v.ev.t = t, t
			defer func() { v.n.t, v.ev.t = parent, parent }()
			r.run(t, v)
		})
	}
}

func row26Traversal(t *testing.T, v *syncVictim) {
	v.wantRejected(t, "../../etc/passwd", "..", ".", "", "/etc/passwd", `a\b`, `C:\x`, `\\srv\s`, "a/../../x", "a//b")
	// a/b is a folder inside the sender's inbox (outbox folders are shared):
	// accepted, and confined.
	if _, ok := v.offer(t, "sub/b.txt", []byte("nested")).(*ackMsg); !ok {
		t.Error("nested path refused")
	}
	v.b.waitFile("inbox/mallory/sub/b.txt", []byte("nested"))
	v.check(t)
}

func row27Controls(t *testing.T, v *syncVictim) {
	v.wantRejected(t, "a\x00b", "a\nb", "a\x01b", "a\x1b[2Jb", "\u202etxt.exe", "a\u200bb", "a\x7fb")
	// "|" is an ordinary character on Linux; if accepted it must arrive
	// under exactly that name, never split.
	if r, ok := v.offer(t, "a|b.txt", []byte("pipe")).(*ackMsg); ok {
		_ = r
		v.b.waitFile("inbox/mallory/a|b.txt", []byte("pipe"))
	}
	for _, name := range v.inboxNames() {
		for _, r := range name {
			if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u200b' {
				t.Errorf("name %q with %U reached the inbox", name, r)
			}
		}
	}
	v.check(t)
}

func row28Long(t *testing.T, v *syncVictim) {
	v.wantRejected(t, strings.Repeat("a", 256), strings.Repeat("b", 10<<10), "bad\xff\xfe.txt", strings.Repeat("é", 128))
	v.check(t)
}

func row29Windows(t *testing.T, v *syncVictim) {
	v.wantRejected(t, "NUL", "con.txt", "COM1", "lpt9.log", "trail.", "trail ", "a:b", "aux")
	v.check(t)
}

func row30Collisions(t *testing.T, v *syncVictim) {
	for _, p := range []string{"README", "readme", "caf\u00e9.txt", "cafe\u0301.txt"} {
		if _, ok := v.offer(t, p, []byte(p)).(*ackMsg); !ok {
			t.Fatalf("%q refused", p)
		}
	}
	names := v.inboxNames()
	seen := map[string]bool{}
	for _, n := range names {
		k := foldKey(n)
		if seen[k] {
			t.Errorf("two inbox names fold to %q: %q", k, names)
		}
		seen[k] = true
	}
	for _, p := range []string{"README", "readme", "caf\u00e9.txt", "cafe\u0301.txt"} {
		found := false
		for _, n := range names {
			if data, err := os.ReadFile(filepath.Join(v.b.root, "inbox", "mallory", n)); err == nil && string(data) == p {
				found = true
			}
		}
		if !found {
			t.Errorf("content of %q was overwritten by a colliding name", p)
		}
	}
	v.check(t)
}

func row31PeerNames(t *testing.T, v *syncVictim) {
	hostile := []string{"../x", "/", ".", "..", "", strings.Repeat("n", 1000), "a\x00b", "Mallory"} // "Mallory" folds onto mallory
	var evils []*evilPeer
	for i, name := range hostile {
		ev := newEvil(t, v.n, name, v.b)
		data := []byte(fmt.Sprintf("from %q", name))
		m := offerOf(transferID{0xc0, byte(i)}, "x.txt", data)
		ev.t = t
		ev.sendTo(v.b, m)
		if _, ok := ev.next().(*acceptMsg); !ok {
			t.Fatalf("peer %q: offer refused", name)
		}
		sendAll(ev, v.b, m.ID, data)
		if _, ok := ev.next().(*ackMsg); !ok {
			t.Fatalf("peer %q: no ACK", name)
		}
		evils = append(evils, ev)
	}
	for _, ev := range evils { // offline from now on: not offered later rows' files
		v.n.cut(ev.fakeNode, v.b)
	}
	ents, err := os.ReadDir(filepath.Join(v.b.root, "inbox"))
	if err != nil {
		t.Fatal(err)
	}
	folders := map[string]bool{}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".meshfs") {
			continue
		}
		if !e.IsDir() || e.Name() == "." || e.Name() == ".." || strings.ContainsAny(e.Name(), "/\x00") || len(e.Name()) > 255 {
			t.Errorf("bad peer folder %q", e.Name())
		}
		folders[e.Name()] = true
		v.folders = append(v.folders, e.Name())
	}
	if len(folders) != len(hostile)+1 { // each peer its own folder, plus mallory's
		t.Errorf("%d peer folders for %d peers: %v", len(folders), len(hostile)+1, folders)
	}
	v.check(t)
}

func row32Symlink(t *testing.T, v *syncVictim) {
	outside := t.TempDir()
	link := filepath.Join(v.b.root, "inbox", "mallory", "escape")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(link)
	r := v.offer(t, "escape/pwned.txt", []byte("pwned"))
	t.Logf("reply: %T", r)
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("wrote through a planted symlink: %v", ents)
	}
	v.check(t)
}

func row33Sizes(t *testing.T, v *syncVictim) {
	for _, size := range []uint64{1<<64 - 1, 1<<63 - 1, 2 << 20} {
		m := &offerMsg{ID: v.id(), Path: "big.bin", Size: size, BlockSize: maxBlockSize, Blocks: []hash32{{}}}
		if _, err := decodeMessage(m.encode()); err != nil {
			t.Logf("size %d: refused by the decoder: %v", size, err)
			continue
		}
		v.ev.sendTo(v.b, m)
		if r, ok := v.replyFor(t, m.ID).(*rejectMsg); !ok {
			t.Errorf("size %d: %+v, want REJECT", size, r)
		}
	}
	// Size 0 with chunks: the chunk is ignored, the file is empty.
	m := offerOf(v.id(), "empty.bin", nil)
	v.ev.sendTo(v.b, m)
	if _, ok := v.replyFor(t, m.ID).(*acceptMsg); ok {
		v.ev.sendTo(v.b, &chunkMsg{ID: m.ID, Index: 0, Data: []byte("smuggled")})
		v.ev.sendTo(v.b, &doneMsg{ID: m.ID})
		v.replyFor(t, m.ID)
	}
	if data, err := os.ReadFile(filepath.Join(v.b.root, "inbox", "mallory", "empty.bin")); err == nil && len(data) != 0 {
		t.Errorf("declared 0 bytes, got %d", len(data))
	}
	v.check(t)
}

func row34Chunks(t *testing.T, v *syncVictim) {
	data := randBytes(34, 2*minBlockSize+5)
	m := offerOf(v.id(), "chunks.bin", data)
	v.ev.sendTo(v.b, m)
	v.replyFor(t, m.ID)
	v.ev.sendTo(v.b, &chunkMsg{ID: m.ID, Index: 99, Data: data[:minBlockSize]})
	v.ev.sendTo(v.b, &chunkMsg{ID: m.ID, Index: 1 << 31, Data: data[:minBlockSize]})
	v.ev.sendTo(v.b, &chunkMsg{ID: m.ID, Index: 2, Data: data[:minBlockSize]}) // last block is 5 bytes
	v.ev.sendTo(v.b, &chunkMsg{ID: transferID{0xee}, Index: 0, Data: data[:minBlockSize]})
	sendAll(v.ev, v.b, m.ID, data)
	if _, ok := v.replyFor(t, m.ID).(*ackMsg); !ok {
		t.Fatal("good transfer failed after junk chunks")
	}
	v.b.waitFile("inbox/mallory/chunks.bin", data)
	v.check(t)
}

func row35BlockHash(t *testing.T, v *syncVictim) {
	data := randBytes(35, minBlockSize+9)
	m := offerOf(v.id(), "flipped.bin", data)
	v.ev.sendTo(v.b, m)
	v.replyFor(t, m.ID)
	bad := bytes.Clone(data)
	bad[3] ^= 1
	for round := 0; ; round++ {
		if round > maxResendRounds+2 {
			t.Fatal("bit-flipped block never aborted")
		}
		sendAll(v.ev, v.b, m.ID, bad)
		r := v.replyFor(t, m.ID)
		if _, ok := r.(*rejectMsg); ok {
			break
		}
		if _, ok := r.(*ackMsg); ok {
			t.Fatal("bit-flipped file acknowledged")
		}
	}
	if exists(filepath.Join(v.b.root, "inbox", "mallory", "flipped.bin")) {
		t.Error("corrupt file renamed into place")
	}
	// The partial stays, with its good blocks, for another member or a
	// later offer to complete; the janitor removes it if none does.
	if parts, _ := filepath.Glob(filepath.Join(v.b.root, "inbox", partialsName, "*-"+m.ID.String()+".part")); len(parts) != 1 {
		t.Error("partial of the good blocks dropped")
	}
	v.check(t)
}

func row36FileHash(t *testing.T, v *syncVictim) {
	data := randBytes(36, 100)
	m := offerOf(v.id(), "wronghash.bin", data)
	m.FileHash = hash32{1}
	v.ev.sendTo(v.b, m)
	v.replyFor(t, m.ID)
	sendAll(v.ev, v.b, m.ID, data)
	if r, ok := v.replyFor(t, m.ID).(*rejectMsg); !ok || r.Code != rejectIO {
		t.Errorf("reply %+v, want REJECT io", r)
	}
	if err := testutil.WaitFor(effectTimeout, func() error {
		if parts, _ := filepath.Glob(filepath.Join(v.b.root, "inbox", partialsName, "*-"+m.ID.String()+".part")); len(parts) != 0 {
			return fmt.Errorf("partial %s left", parts[0])
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if exists(filepath.Join(v.b.root, "inbox", "mallory", "wronghash.bin")) {
		t.Error("file with a wrong hash put in place")
	}
	v.check(t)
}

// row37Manifest: an OFFER whose block count field says 10^9; the decoder
// refuses it before allocating (the message is dropped, bob stays up).
func row37Manifest(t *testing.T, v *syncVictim) {
	m := offerOf(v.id(), "huge.bin", randBytes(37, 10))
	enc := m.encode()
	// The block count is the u32 before the single 32-byte hash at the end.
	countAt := len(enc) - 32 - 4
	enc[countAt], enc[countAt+1], enc[countAt+2], enc[countAt+3] = 0x3b, 0x9a, 0xca, 0x00
	if _, err := decodeMessage(enc); err == nil {
		t.Fatal("manifest with 10^9 hashes decoded")
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := v.ev.SendBytes(t.Context(), v.b.id, enc); err != nil {
		t.Fatal(err)
	}
	v.alive(t)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if after.TotalAlloc-before.TotalAlloc > 64<<20 {
		t.Errorf("allocated %d MiB for a bogus manifest", (after.TotalAlloc-before.TotalAlloc)>>20)
	}
	v.check(t)
}

func row38Replay(t *testing.T, v *syncVictim) {
	data := randBytes(38, minBlockSize+1)
	m := offerOf(v.id(), "replayed.bin", data)
	v.ev.sendTo(v.b, m)
	v.replyFor(t, m.ID)
	v.ev.sendTo(v.b, m) // second OFFER for the active ID
	sendAll(v.ev, v.b, m.ID, data)
	if _, ok := v.replyFor(t, m.ID).(*acceptMsg); ok { // the duplicate's answer
		v.replyFor(t, m.ID)
	}
	v.b.waitFile("inbox/mallory/replayed.bin", data)
	v.ev.sendTo(v.b, m) // replay after completion
	if _, ok := v.replyFor(t, m.ID).(*ackMsg); !ok {
		t.Error("replayed completed OFFER: want ACK")
	}
	for _, n := range v.inboxNames() {
		if strings.HasPrefix(n, "replayed (") {
			t.Errorf("replay made a second copy %q", n)
		}
	}
	v.check(t)
}

func row39Reorder(t *testing.T, v *syncVictim) {
	data := randBytes(39, 4*minBlockSize+3)
	m := offerOf(v.id(), "reordered.bin", data)
	v.ev.sendTo(v.b, m)
	v.replyFor(t, m.ID)
	for _, i := range []int{4, 2, 2, 0, 3, 1, 0, 4} {
		v.ev.sendTo(v.b, &chunkMsg{ID: m.ID, Index: uint32(i), Data: data[i*minBlockSize : min((i+1)*minBlockSize, len(data))]})
	}
	v.ev.sendTo(v.b, &doneMsg{ID: m.ID})
	if _, ok := v.replyFor(t, m.ID).(*ackMsg); !ok {
		t.Fatal("reordered, duplicated chunks: no ACK")
	}
	v.b.waitFile("inbox/mallory/reordered.bin", data)
	v.check(t)
}

// row40ManyOffers is scaled from thousands to 1000 OFFERs in one burst.
func row40ManyOffers(t *testing.T, v *syncVictim) {
	const offers = 1000
	want := map[transferID]bool{}
	var msgs []*offerMsg
	for i := range offers {
		m := offerOf(v.id(), fmt.Sprintf("flood-%d.bin", i), randBytes(uint64(i), 10))
		want[m.ID] = true
		msgs = append(msgs, m)
	}
	sent := make(chan struct{})
	go func() { // send while the replies are read: the link applies back-pressure
		defer close(sent)
		for _, m := range msgs {
			if v.ev.SendBytes(t.Context(), v.b.id, v.ev.encode(m)) != nil {
				return
			}
		}
	}()
	accepted, busy, peakFDs := 0, 0, 0
	timeout := time.After(30 * time.Second)
	for accepted+busy < offers {
		select {
		case r := <-v.inbox:
			switch r := r.(type) {
			case *acceptMsg:
				if want[r.ID] {
					accepted++
				}
			case *rejectMsg:
				if want[r.ID] && r.Code == rejectBusy {
					busy++
				}
			}
			peakFDs = max(peakFDs, openFDs(t))
		case <-timeout:
			t.Fatalf("after 30s: %d accepted, %d busy of %d", accepted, busy, offers)
		}
	}
	<-sent
	t.Logf("%d OFFERs: %d accepted, %d BUSY; peak open files %d (baseline %d)", offers, accepted, busy, peakFDs, v.fds)
	if accepted > v.b.cfg.MaxInboundPerPeer {
		t.Errorf("%d concurrent transfers accepted, cap %d", accepted, v.b.cfg.MaxInboundPerPeer)
	}
	if peakFDs > v.fds+v.b.cfg.MaxInboundPerPeer+4 {
		t.Errorf("%d open files during the flood, baseline %d", peakFDs, v.fds)
	}
	// Abandon them: the engine frees the slots when the peer disconnects.
	v.n.cut(v.ev.fakeNode, v.b)
	v.n.connect(v.ev.fakeNode, v.b)
	v.check(t)
}

// startTransfer offers data as name from mallory and sends only its first
// block: a transfer left half done.
func (v *syncVictim) startTransfer(t *testing.T, name string, data []byte) *offerMsg {
	t.Helper()
	m := offerOf(v.id(), name, data)
	v.ev.sendTo(v.b, m)
	v.replyFor(t, m.ID)
	v.ev.sendTo(v.b, &chunkMsg{ID: m.ID, Index: 0, Data: data[:minBlockSize]})
	return m
}

func row41Abandon(t *testing.T, v *syncVictim) {
	data := randBytes(41, 3*minBlockSize)
	v.startTransfer(t, "abandoned.bin", data)
	v.n.cut(v.ev.fakeNode, v.b)
	if err := testutil.WaitFor(effectTimeout, func() error {
		if fds := openFDs(t); fds > v.fds+2 {
			return fmt.Errorf("%d open files after the sender left, baseline %d", fds, v.fds)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if exists(filepath.Join(v.b.root, "inbox", "mallory", "abandoned.bin")) {
		t.Error("half a file put in place")
	}
	v.n.connect(v.ev.fakeNode, v.b)
	v.check(t)
}

func row42DiskFull(t *testing.T, v *syncVictim) {
	var failing atomic.Bool
	failing.Store(true)
	e := v.b.engine()
	e.writeAt = func(f *os.File, d []byte, off int64) (int, error) {
		if failing.Load() {
			return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.WriteAt(d, off)
	}
	defer failing.Store(false)
	data := randBytes(42, 2*minBlockSize)
	r, ok := v.offer(t, "nospace.bin", data).(*rejectMsg)
	if !ok || r.Code != rejectNoSpace {
		t.Errorf("reply %+v, want REJECT no space", r)
	}
	// The failed write named bob's partial file; the member is told only
	// that the disk is full.
	if ok && (strings.Contains(r.Reason, "/") || strings.Contains(r.Reason, "no space left on device")) {
		t.Errorf("REJECT reason %q carries a local path or OS error text", r.Reason)
	}
	if exists(filepath.Join(v.b.root, "inbox", "mallory", "nospace.bin")) {
		t.Error("file put in place despite ENOSPC")
	}
	failing.Store(false)
	v.check(t)
}

// row43Crash: bob's engine stops mid-transfer (as a kill would leave it)
// and restarts: the final file is absent or complete, never partial.
func row43Crash(t *testing.T, v *syncVictim) {
	data := randBytes(43, 3*minBlockSize)
	m := v.startTransfer(t, "crash.bin", data)
	v.n.cut(v.ev.fakeNode, v.b)
	v.b.closeEngine()
	final := filepath.Join(v.b.root, "inbox", "mallory", "crash.bin")
	if got, err := os.ReadFile(final); err == nil && sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatal("partial content under the final name after a crash")
	}
	v.b.open()
	v.b.start()
	v.n.connect(v.ev.fakeNode, v.b)
	v.ev.sendTo(v.b, m) // resume: bob says which blocks he has
	if a, ok := v.replyFor(t, m.ID).(*acceptMsg); ok {
		t.Logf("resumed with %d of %d blocks", a.Have.count(), len(m.Blocks))
		sendAll(v.ev, v.b, m.ID, data)
		v.replyFor(t, m.ID)
	}
	v.b.waitFile("inbox/mallory/crash.bin", data)
	runtime.GC()
	v.fds, v.gor = openFDs(t), runtime.NumGoroutine() // a new engine: new baseline
	v.check(t)
}

func row44SameName(t *testing.T, v *syncVictim) {
	one, two := []byte("first version"), []byte("second version")
	for _, d := range [][]byte{one, two} {
		if _, ok := v.offer(t, "same.txt", d).(*ackMsg); !ok {
			t.Fatal("refused")
		}
	}
	v.b.waitFile("inbox/mallory/same.txt", one)
	found := false
	for _, n := range v.inboxNames() {
		if got, _ := os.ReadFile(filepath.Join(v.b.root, "inbox", "mallory", n)); n != "same.txt" && bytes.Equal(got, two) {
			found = true
			t.Logf("second copy as %q", n)
		}
	}
	if !found {
		t.Error("second file with the same name overwrote or lost")
	}
	v.check(t)
}

// row57Replaces: an OFFER may replace the file bob placed for an earlier
// transfer of the same path from the same member, and only while bob has
// not changed it. Naming a transfer of another path, or one whose file bob
// edited, places a numbered copy and leaves his files as they are.
func row57Replaces(t *testing.T, v *syncVictim) {
	send := func(path string, data []byte, replaces ...transferID) transferID {
		m := offerOf(v.id(), path, data)
		m.Replaces = replaces
		if r, ok := v.offerMsg(t, m, data).(*ackMsg); !ok {
			t.Fatalf("%s refused: %+v", path, r)
		}
		return m.ID
	}
	v1 := send("r/doc.txt", []byte("version 1"))
	v.b.waitFile("inbox/mallory/r/doc.txt", []byte("version 1"))
	v2 := send("r/doc.txt", []byte("version 2"), v1)
	v.b.waitFile("inbox/mallory/r/doc.txt", []byte("version 2"))
	send("r/other.txt", []byte("other"), v2) // another path's transfer
	v.b.waitFile("inbox/mallory/r/other.txt", []byte("other"))
	v.b.waitFile("inbox/mallory/r/doc.txt", []byte("version 2"))
	mine := []byte("bob's edit")
	if err := os.WriteFile(filepath.Join(v.b.root, "inbox", "mallory", "r", "doc.txt"), mine, 0o644); err != nil {
		t.Fatal(err)
	}
	send("r/doc.txt", []byte("version 3"), v2)
	v.b.waitFile("inbox/mallory/r/doc (1).txt", []byte("version 3"))
	v.b.waitFile("inbox/mallory/r/doc.txt", mine)
	v.check(t)
}

// row45OutboxSpecial: bob's own outbox holds a FIFO and a symlink; only
// the regular file is offered to mallory.
func row45OutboxSpecial(t *testing.T, v *syncVictim) {
	outbox := filepath.Join(v.b.root, "outbox")
	if err := mkfifo(filepath.Join(outbox, "fifo")); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/etc/passwd", filepath.Join(outbox, "passwd-link"))
	if err := mknull(filepath.Join(outbox, "null")); err != nil {
		t.Fatalf("make a device node (the row needs root): %v", err)
	}
	for _, rel := range []string{"fifo", "passwd-link", "null"} {
		v.b.engine().OutboxClosed(rel)
	}
	v.b.put("regular.txt", []byte("ok"))
	timeout := time.After(effectTimeout)
	for done := false; !done; {
		select {
		case r := <-v.inbox:
			m, ok := r.(*offerMsg)
			if !ok {
				continue
			}
			if m.Path != "regular.txt" {
				t.Fatalf("bob offered %q", m.Path)
			}
			v.ev.sendTo(v.b, &ackMsg{ID: m.ID})
			done = true
		case <-timeout:
			t.Fatal("regular file never offered")
		}
	}
	os.Remove(filepath.Join(outbox, "fifo"))
	os.Remove(filepath.Join(outbox, "passwd-link"))
	os.Remove(filepath.Join(outbox, "null"))
	os.Remove(filepath.Join(outbox, "regular.txt"))
	v.b.engine().OutboxRemoved("regular.txt")
	v.check(t)
}

// row46ManyFiles is scaled from 10,000 to 1,000 files: bob offers them
// all to mallory (who acknowledges each) with bounded goroutines, not one
// per file.
func row46ManyFiles(t *testing.T, v *syncVictim) {
	const files = 1000
	for i := range files {
		p := filepath.Join(v.b.root, "outbox", "many", fmt.Sprintf("f%04d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range files {
		v.b.engine().OutboxClosed(fmt.Sprintf("many/f%04d", i))
	}
	peak, offered := 0, map[string]bool{}
	timeout := time.After(60 * time.Second)
	var err error
	for err == nil && len(offered) < files {
		select {
		case r := <-v.inbox:
			if m, ok := r.(*offerMsg); ok {
				offered[m.Path] = true
				v.ev.SendBytes(t.Context(), v.b.id, (&ackMsg{ID: m.ID}).encode())
			}
			peak = max(peak, runtime.NumGoroutine())
		case <-timeout:
			err = fmt.Errorf("%d of %d files offered after 60s", len(offered), files)
		}
	}
	t.Logf("%d files: peak goroutines %d (baseline %d)", files, peak, v.gor)
	if err != nil {
		t.Fatal(err)
	}
	if peak > v.gor+64 {
		t.Errorf("peak goroutines %d, baseline %d: one per file?", peak, v.gor)
	}
	os.RemoveAll(filepath.Join(v.b.root, "outbox", "many"))
	v.b.engine().OutboxRemoved("many")
	v.check(t)
}

// row52ZeroChunk: a CHUNK without data says "block 1 is zeros" when its
// hash says otherwise. Bob drops it like any corrupt block (with a
// manifest at once, streamed when DONE brings the hashes), asks for block
// 1 again, and places the right file.
func row52ZeroChunk(t *testing.T, v *syncVictim) {
	data := randBytes(52, 3*minBlockSize+7)
	for _, streamed := range []bool{false, true} {
		name := fmt.Sprintf("zero-%v.bin", streamed)
		offer, done := offerOf(v.id(), name, data), &doneMsg{}
		if streamed {
			offer, done = streamedOffer(offer.ID, name, data)
		}
		done.ID = offer.ID
		v.ev.sendTo(v.b, offer)
		if _, ok := v.replyFor(t, offer.ID).(*acceptMsg); !ok {
			t.Fatalf("%s: offer refused", name)
		}
		for i := 0; i*minBlockSize < len(data); i++ {
			c := &chunkMsg{ID: offer.ID, Index: uint32(i), Data: data[i*minBlockSize : min((i+1)*minBlockSize, len(data))]}
			if i == 1 {
				c.Data = nil
			}
			v.ev.sendTo(v.b, c)
		}
		v.ev.sendTo(v.b, done)
		if a, ok := v.replyFor(t, offer.ID).(*acceptMsg); !ok || a.Have.has(1) || a.Have.count() != 3 {
			t.Fatalf("%s: reply = %+v, want ACCEPT asking for block 1 only", name, a)
		}
		v.ev.sendTo(v.b, &chunkMsg{ID: offer.ID, Index: 1, Data: data[minBlockSize : 2*minBlockSize]})
		v.ev.sendTo(v.b, &doneMsg{ID: offer.ID})
		if r, ok := v.replyFor(t, offer.ID).(*ackMsg); !ok {
			t.Fatalf("%s: reply = %+v, want ACK", name, r)
		}
		v.b.waitFile("inbox/mallory/"+name, data)
	}
	v.check(t)
}

// row53Links: mallory offers links that are absolute, leave her inbox
// folder, or are not in clean form (a ".." after a link's name could climb
// out of wherever that link points): each is refused as a bad name. A link
// that is fine is placed, and a file offered below it is placed in a real
// folder beside it, never through the link.
func row53Links(t *testing.T, v *syncVictim) {
	for _, target := range []string{"/etc/passwd", "../x", "a/../../x", "ok/../l", "sub/./f", `..\x`} {
		m := &offerMsg{ID: v.id(), Path: "bad-link", BlockSize: minBlockSize, Mode: 0o777, Type: entrySymlink, Target: target}
		v.ev.sendTo(v.b, m)
		if r, ok := v.replyFor(t, m.ID).(*rejectMsg); !ok || r.Code != rejectName {
			t.Errorf("link to %q: reply %+v, want REJECT name", target, r)
		}
	}
	if _, err := os.Lstat(filepath.Join(v.b.root, "inbox", "mallory", "bad-link")); err == nil {
		t.Error("a refused link was placed")
	}
	m := &offerMsg{ID: v.id(), Path: "d", BlockSize: minBlockSize, Mode: 0o777, Type: entrySymlink, Target: "."}
	v.ev.sendTo(v.b, m)
	if _, ok := v.replyFor(t, m.ID).(*ackMsg); !ok {
		t.Fatal("a link to its own folder was refused")
	}
	if r, ok := v.offer(t, "d/x", []byte("through")).(*ackMsg); !ok {
		t.Fatalf("file below the link: %+v", r)
	}
	for _, through := range []string{"inbox/mallory/x", "inbox/x"} {
		if exists(filepath.Join(v.b.root, filepath.FromSlash(through))) {
			t.Errorf("a file was written through a received link: %s", through)
		}
	}
	if got, err := os.ReadFile(filepath.Join(v.b.root, "inbox", "mallory", "d (1)", "x")); err != nil || string(got) != "through" {
		t.Errorf("inbox/mallory/d (1)/x: %q, %v", got, err)
	}
	os.RemoveAll(filepath.Join(v.b.root, "inbox", "mallory", "d (1)"))
	os.Remove(filepath.Join(v.b.root, "inbox", "mallory", "d"))
	v.check(t)
}

// Rows 54-56: blocks larger than a piece (pieces.go), here blocks of
// 256 KiB sent in pieces of 64 KiB: bob takes any piece length up to
// pieceSize, so small blocks exercise what 64 MiB ones do.
const rowBS, rowPiece = 4 * minBlockSize, minBlockSize

// pieceOffer is offerOf with blocks of bs bytes.
func pieceOffer(id transferID, path string, data []byte, bs int) *offerMsg {
	m := &offerMsg{ID: id, Path: path, Size: uint64(len(data)), BlockSize: uint32(bs), Mode: 0o644, Blocks: []hash32{}}
	for i := 0; i < len(data); i += bs {
		m.Blocks = append(m.Blocks, blockSum(data[i:min(i+bs, len(data))]))
	}
	m.FileHash = fileHashOf(m.Size, m.BlockSize, m.Blocks)
	return m
}

// sendPieces sends block i of data (blocks of rowBS) as pieces of
// rowPiece bytes, in the order of the piece numbers given, or all in order.
func sendPieces(ev *evilPeer, to *fakeNode, id transferID, data []byte, i int, order ...int) {
	blk := data[i*rowBS : min((i+1)*rowBS, len(data))]
	if order == nil {
		for p := 0; p*rowPiece < len(blk); p++ {
			order = append(order, p)
		}
	}
	for _, p := range order {
		piece := blk[p*rowPiece : min((p+1)*rowPiece, len(blk))]
		ev.sendTo(to, &chunkMsg{ID: id, Index: uint32(i), Offset: uint32(p * rowPiece), Data: piece})
	}
}

// acceptPiecesOffer sends m and fails t unless bob accepts it.
func (v *syncVictim) acceptPiecesOffer(t *testing.T, m *offerMsg) {
	t.Helper()
	v.ev.sendTo(v.b, m)
	if r, ok := v.replyFor(t, m.ID).(*acceptMsg); !ok {
		t.Fatalf("%s: reply = %+v, want ACCEPT", m.Path, r)
	}
}

// row54PieceBeyond: block 0's last piece comes where the block's hash is
// but runs half a piece past the block's end, over block 1, which bob
// holds already. Bob drops it without hashing or writing it: the right
// last piece then completes block 0, block 1 stays intact, and DONE gets
// ACK. A piece past the 5-byte last block is dropped too.
func row54PieceBeyond(t *testing.T, v *syncVictim) {
	data := randBytes(54, 2*rowBS+5)
	m := pieceOffer(v.id(), "beyond.bin", data, rowBS)
	v.acceptPiecesOffer(t, m)
	sendPieces(v.ev, v.b, m.ID, data, 1)
	sendPieces(v.ev, v.b, m.ID, data, 2)
	sendPieces(v.ev, v.b, m.ID, data, 0, 0, 1, 2)
	over := append(bytes.Clone(data[3*rowPiece:rowBS]), bytes.Repeat([]byte{0xee}, rowPiece/2)...)
	v.ev.sendTo(v.b, &chunkMsg{ID: m.ID, Index: 0, Offset: 3 * rowPiece, Data: over})
	v.ev.sendTo(v.b, &chunkMsg{ID: m.ID, Index: 2, Offset: 4, Data: []byte("xy")})
	sendPieces(v.ev, v.b, m.ID, data, 0, 3)
	v.ev.sendTo(v.b, &doneMsg{ID: m.ID})
	if r, ok := v.replyFor(t, m.ID).(*ackMsg); !ok {
		t.Fatalf("reply = %+v, want ACK", r)
	}
	v.b.waitFile("inbox/mallory/beyond.bin", data)
	v.check(t)
}

// row55PieceOrder: block 0's pieces come 0, 1, 3, 2, 3: the first piece 3
// is not where the block's hash is, so bob drops the block, and the
// pieces after it continue nothing. Block 2 comes 0, 1, 0, 1, 2, 3: the
// second piece 0 starts it over and it completes. DONE asks for block 0
// only; sent in order, it completes the file.
func row55PieceOrder(t *testing.T, v *syncVictim) {
	data := randBytes(55, 3*rowBS+5)
	m := pieceOffer(v.id(), "order.bin", data, rowBS)
	v.acceptPiecesOffer(t, m)
	sendPieces(v.ev, v.b, m.ID, data, 0, 0, 1, 3, 2, 3)
	sendPieces(v.ev, v.b, m.ID, data, 1)
	sendPieces(v.ev, v.b, m.ID, data, 2, 0, 1, 0, 1, 2, 3)
	sendPieces(v.ev, v.b, m.ID, data, 3)
	v.ev.sendTo(v.b, &doneMsg{ID: m.ID})
	if a, ok := v.replyFor(t, m.ID).(*acceptMsg); !ok || a.Have.has(0) || a.Have.count() != 3 {
		t.Fatalf("reply = %+v, want ACCEPT asking for block 0 only", a)
	}
	sendPieces(v.ev, v.b, m.ID, data, 0)
	v.ev.sendTo(v.b, &doneMsg{ID: m.ID})
	if r, ok := v.replyFor(t, m.ID).(*ackMsg); !ok {
		t.Fatalf("reply = %+v, want ACK", r)
	}
	v.b.waitFile("inbox/mallory/order.bin", data)
	v.check(t)
}

// row56PieceHash: the third piece of block 1 has a flipped bit. Every
// piece is written as it comes, but the block's hash, complete at its
// last piece (or when a streamed file's manifest comes with DONE), is
// wrong: bob does not count the block as held, asks for it again after
// DONE, and places the right file once it is resent.
func row56PieceHash(t *testing.T, v *syncVictim) {
	data := randBytes(56, 3*rowBS+5)
	bad := bytes.Clone(data)
	bad[rowBS+2*rowPiece+7] ^= 1
	for _, streamed := range []bool{false, true} {
		name := fmt.Sprintf("pieces-%v.bin", streamed)
		offer, done := pieceOffer(v.id(), name, data, rowBS), &doneMsg{}
		done.ID = offer.ID
		if streamed {
			full := *offer
			offer.FileHash, offer.Blocks = hash32{}, []hash32{}
			done.FileHash, done.Blocks = full.FileHash, full.Blocks
		}
		v.acceptPiecesOffer(t, offer)
		for i := range 4 {
			sendPieces(v.ev, v.b, offer.ID, bad, i)
		}
		v.ev.sendTo(v.b, done)
		if a, ok := v.replyFor(t, offer.ID).(*acceptMsg); !ok || a.Have.has(1) || a.Have.count() != 3 {
			t.Fatalf("%s: reply = %+v, want ACCEPT asking for block 1 only", name, a)
		}
		sendPieces(v.ev, v.b, offer.ID, data, 1)
		v.ev.sendTo(v.b, &doneMsg{ID: offer.ID})
		if r, ok := v.replyFor(t, offer.ID).(*ackMsg); !ok {
			t.Fatalf("%s: reply = %+v, want ACK", name, r)
		}
		v.b.waitFile("inbox/mallory/"+name, data)
	}
	v.check(t)
}
