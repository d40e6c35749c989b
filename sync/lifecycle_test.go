package sync

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/record"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/internal/testutil"
	"github.com/meshfs/meshfs/mesh"
)

// TestPeerRemovedFinishes: a revoked member is dropped from the delivery
// record, so the file moves to sent/ once the others have it.
func TestPeerRemovedFinishes(t *testing.T) {
	n := newFakeNet(t)
	a, b, c := n.addNode("alice", nil), n.addNode("bob", nil), n.addNode("carol", nil)
	a.start()
	b.start()
	c.start()
	n.connect(a, b)
	data := randBytes(30, 500)
	a.put("r.txt", data)
	b.waitFile("inbox/alice/r.txt", data)
	if !exists(filepath.Join(a.root, "outbox", "r.txt")) {
		t.Fatalf("moved to sent before carol had it")
	}
	a.engine().HandleEvent(mesh.PeerRemoved{Peer: mesh.PeerInfo{ID: c.id, Name: c.name}})
	a.waitFile("sent/r.txt", data)
}

// TestSenderRestart: delivery records survive a restart of the sender, and
// a file closed while the node was down is found by the rescan.
func TestSenderRestart(t *testing.T) {
	n := newFakeNet(t)
	a, b := n.addNode("alice", nil), n.addNode("bob", nil)
	a.start()
	b.start()
	queued := randBytes(31, 2*minBlockSize)
	a.put("queued.bin", queued)
	waitFor(t, func() bool { return len(a.engine().Status().Transfers) == 1 })
	a.closeEngine()
	// Written while down: no OutboxClosed ever comes for it.
	offline := randBytes(32, 100)
	os.WriteFile(filepath.Join(a.root, "outbox", "offline.txt"), offline, 0o644)
	a.open()
	a.start()
	n.connect(a, b)
	b.waitFile("inbox/alice/queued.bin", queued)
	b.waitFile("inbox/alice/offline.txt", offline)
	a.waitFile("sent/queued.bin", queued)
	a.waitFile("sent/offline.txt", offline)
	waitFor(t, func() bool { // records are deleted once delivered
		ents, _ := os.ReadDir(filepath.Join(a.st, "outgoing"))
		return len(ents) == 0
	})
}

// TestOutboxRewritten: a file rewritten before delivery is sent in its new
// version only.
func TestOutboxRewritten(t *testing.T) {
	n := newFakeNet(t)
	a, b := n.addNode("alice", nil), n.addNode("bob", nil)
	a.start()
	b.start()
	a.put("v.txt", []byte("version one"))
	waitFor(t, func() bool { return len(a.engine().Status().Transfers) == 1 })
	v2 := randBytes(33, minBlockSize+1)
	a.put("v.txt", v2)
	waitFor(t, func() bool {
		tr := a.engine().Status().Transfers
		return len(tr) == 1 && tr[0].Size == int64(len(v2))
	})
	n.connect(a, b)
	b.waitFile("inbox/alice/v.txt", v2)
	if exists(filepath.Join(b.root, "inbox", "alice", "v (1).txt")) {
		t.Errorf("old version delivered too")
	}
}

// TestIgnoredOutboxEntries: temporary names, dot-files and symlinks are
// not sent.
func TestIgnoredOutboxEntries(t *testing.T) {
	n := newFakeNet(t)
	a, _ := n.addNode("alice", nil), n.addNode("bob", nil)
	a.start()
	for _, rel := range []string{"x.part", "y.tmp", "z~", ".hidden"} {
		a.put(rel, []byte("x"))
	}
	os.Symlink("/etc/passwd", filepath.Join(a.root, "outbox", "link"))
	a.engine().OutboxClosed("link")
	a.put("real.txt", []byte("x"))
	waitFor(t, func() bool { return len(a.engine().Status().Transfers) == 1 })
	if got := a.engine().Status().Transfers[0].Path; got != "real.txt" {
		t.Errorf("queued %q, want only real.txt", got)
	}
}

// TestCrashAfterRename: a sidecar whose partial is gone means the rename
// happened before a crash; a replayed OFFER gets ACK, not a second copy.
func TestCrashAfterRename(t *testing.T) {
	n := newFakeNet(t)
	b := n.addNode("bob", nil)
	b.closeEngine()
	peer := mesh.PeerIDFromKey([]byte("mallory"))
	k := inKey{peer, transferID{5}}
	meta := partialMeta{Hash: blockHashName, Peer: peer.String(), ID: k.id, Path: "f", Size: 1, BlockSize: minBlockSize, Blocks: []hash32{{}}}
	if err := atomicfile.WriteJSON(filepath.Join(b.root, "inbox", partialsName, partBase(k)+".json"), &meta); err != nil {
		t.Fatal(err)
	}
	b.open()
	if !b.engine().in.isCompleted(k) {
		t.Errorf("transfer not recorded as completed")
	}
}

// TestJanitorRemovesStale: partials idle for PartialTTL are deleted.
func TestJanitorRemovesStale(t *testing.T) {
	n := newFakeNet(t)
	b := n.addNode("bob", func(c *Config) { c.PartialTTL = time.Millisecond; c.JanitorInterval = 5 * time.Millisecond })
	b.start()
	ev := newEvil(t, n, "mallory", b)
	ev.sendTo(b, offerOf(transferID{1}, "s.bin", randBytes(34, 100)))
	ev.next()
	n.cut(ev.fakeNode, b)
	err := testutil.WaitFor(effectTimeout, func() error {
		ents, _ := os.ReadDir(filepath.Join(b.root, "inbox", partialsName))
		if len(ents) != 0 {
			return os.ErrExist
		}
		return nil
	})
	if err != nil {
		t.Fatalf("stale partial kept: %v", err)
	}
}

// TestPeersTable checks the header and one line per member.
func TestPeersTable(t *testing.T) {
	n := newFakeNet(t)
	a, b, _ := n.addNode("alice", nil), n.addNode("bob", nil), n.addNode("carol\x1b[2J", nil)
	a.start()
	b.start()
	n.connect(a, b)
	lines := splitLines(string(a.engine().PeersTable()))
	if len(lines) != 3 {
		t.Fatalf("PeersTable() = %q, want header + 2 lines", lines)
	}
	for _, want := range []string{"NAME", "ID", "STATE", "PATH", "ADDRESS", "RTT", "SEEN", "TRANSFERS"} {
		if !contains(lines[0], want) {
			t.Errorf("header %q lacks %q", lines[0], want)
		}
	}
	if !contains(lines[1], "bob") || !contains(lines[1], "connected") || !contains(lines[1], "0.3ms") || !contains(lines[1], "now") {
		t.Errorf("bob line = %q", lines[1])
	}
	if !contains(lines[2], "offline") || contains(lines[2], "\x1b") {
		t.Errorf("carol line = %q", lines[2])
	}
}

func TestFormatTransfers(t *testing.T) {
	tests := []struct{ got, want string }{
		{formatTransfers(PeerStatus{Queued: 2, InFlight: 1}), "2 queued, 1 sending"},
		{formatTransfers(PeerStatus{Problem: "refused: no space left"}), "refused: no space left"},
		{formatTransfers(PeerStatus{}), "-"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	if err := testutil.WaitFor(effectTimeout, func() error {
		if !cond() {
			return os.ErrNotExist
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestEventsBeforeStart: events that arrive between New and Start are kept
// and handled once the engine starts.
func TestEventsBeforeStart(t *testing.T) {
	n := newFakeNet(t)
	a, b := n.addNode("alice", nil), n.addNode("bob", nil)
	early := (&recordsMsg{Records: []record.Chat{a.line(1, "early")}}).encode()
	b.engine().HandleEvent(mesh.BytesReceived{From: a.id, Data: early})
	a.start()
	b.start()
	waitChat(t, b, []string{"alice: early"})
}

// TestUnknownStateFormat: state this version did not write is not trusted,
// and nothing in outbox/ is lost for it: a delivery record in another
// format is dropped and its file hashed and sent again; a partial is
// removed.
func TestUnknownStateFormat(t *testing.T) {
	n := newFakeNet(t)
	a, c := n.addNode("alice", nil), n.addNode("carol", nil)
	a.start()
	data := randBytes(35, 2*minBlockSize+7)
	a.put("old.bin", data)
	waitFor(t, func() bool { return len(a.engine().Status().Transfers) > 0 })
	a.closeEngine()
	ents, err := os.ReadDir(filepath.Join(a.st, "outgoing"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("want one record, got %v (%v)", ents, err)
	}
	recPath := filepath.Join(a.st, "outgoing", ents[0].Name())
	var rec outRecord
	if err := atomicfile.ReadJSON(recPath, &rec); err != nil {
		t.Fatal(err)
	}
	oldID := rec.ID
	rec.Manifest.Hash = "sha256" // a block hash this version does not use
	rec.Peers = map[string]*delivery{c.id.String(): {State: StateQueued, Name: "carol"}}
	if err := atomicfile.WriteJSON(recPath, &rec); err != nil {
		t.Fatal(err)
	}
	stalePart := inKey{c.id, transferID{9}}
	meta := partialMeta{Peer: c.id.String(), ID: stalePart.id, Path: "p", Size: 1, BlockSize: minBlockSize, Blocks: []hash32{{}}}
	if err := atomicfile.WriteJSON(filepath.Join(a.root, "inbox", partialsName, partBase(stalePart)+".json"), &meta); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(a.root, "inbox", partialsName, partBase(stalePart)+".part"), []byte("x"), 0o600)

	a.open()
	a.start()
	c.start()
	n.connect(a, c)
	c.waitFile("inbox/alice/old.bin", data)
	a.waitFile("sent/old.bin", data)
	if got := a.engine().Status().Transfers; len(got) != 0 {
		t.Errorf("transfers left: %+v", got)
	}
	if exists(filepath.Join(a.root, "inbox", partialsName, partBase(stalePart)+".part")) {
		t.Errorf("partial in an unknown format kept")
	}
	if _, err := os.Stat(filepath.Join(a.st, "outgoing", oldID.String()+".json")); err == nil {
		t.Errorf("old record kept")
	}
}

// TestHelloVersion: members greet each other with their sync protocol
// version before anything is offered; a member that speaks another version
// is offered nothing, and its status says why.
func TestHelloVersion(t *testing.T) {
	n := newFakeNet(t)
	a := n.addNode("alice", nil)
	a.start()
	other := newEvilSpeaking(t, n, "newer", a, Version+1)
	if h, ok := other.firstHello(); !ok || h.Version != Version {
		t.Fatalf("first message from alice = %+v, want HELLO %d", h, Version)
	}
	a.put("held.bin", randBytes(7, minBlockSize))
	want := fmt.Sprintf("speaks sync protocol %d, this node %d", Version+1, Version)
	waitFor(t, func() bool {
		for _, p := range a.engine().Status().Peers {
			if strings.Contains(p.Problem, want) {
				return true
			}
		}
		return false
	})
	if m := other.drain(); len(m) != 0 {
		t.Errorf("alice sent %d messages to a member of another version: %T", len(m), m[0])
	}
}

// TestAddressLines: the "this node" block shows the mapping or why there
// is none, and never a control character from an address.
func TestAddressLines(t *testing.T) {
	tests := []struct {
		name string
		a    AddressStatus
		want []string
	}{
		{"mapped", AddressStatus{Listen: "[::]:8000", Local: []string{"10.0.0.2:8000", "[fd00::2]:8000"},
			Observed: []string{"203.0.113.5:8000"}, Mapped: "203.0.113.5:8000", MappingProblem: "stale"},
			[]string{"listen    [::]:8000", "local     10.0.0.2:8000, [fd00::2]:8000", "observed  203.0.113.5:8000",
				"mapped    203.0.113.5:8000"}},
		{"no mapping", AddressStatus{Listen: "10.0.0.2:8000", MappingProblem: "off (--port-mapping=off)"},
			[]string{"listen    10.0.0.2:8000", "no port mapping: off (--port-mapping=off)"}},
		{"control characters", AddressStatus{Listen: "h\x1b[2J:1"}, []string{"listen    h:1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Lines(); !slices.Equal(got, tc.want) {
				t.Errorf("Lines(%+v) = %q, want %q", tc.a, got, tc.want)
			}
		})
	}
}
