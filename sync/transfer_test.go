package sync

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/meshfs/meshfs/internal/testutil"
	"github.com/meshfs/meshfs/mesh"
)

// randBytes returns n seeded pseudo-random bytes.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// pair returns two started, connected nodes.
// hashModes are the two ways a file is offered: hashed first (small files)
// and streamed, hashed while it is sent (send.go).
var hashModes = []struct {
	name string
	edit func(*Config)
}{
	{"hashed first", nil},
	{"streamed", func(c *Config) { c.StreamMinSize = 1 }},
}

func pair(t testing.TB, edit func(*Config)) (*fakeNet, *fakeNode, *fakeNode) {
	n := newFakeNet(t)
	a, b := n.addNode("alice", edit), n.addNode("bob", edit)
	a.start()
	b.start()
	n.connect(a, b)
	return n, a, b
}

func TestTransferDelivers(t *testing.T) {
	tests := []struct {
		name string
		rel  string
		size int
	}{
		{"empty", "empty.txt", 0},
		{"small", "small.txt", 100},
		{"exact block", "block.bin", minBlockSize},
		{"multi block", "multi.bin", 5*minBlockSize + 123},
		{"folder path", "tree/sub/n.txt", 3000},
	}
	_, a, b := pair(t, nil)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := randBytes(uint64(i), tc.size)
			a.put(tc.rel, data)
			b.waitFile("inbox/alice/"+tc.rel, data)
			a.waitFile("sent/"+tc.rel, data)
			a.waitGone("outbox/" + tc.rel)
		})
	}
	// The user's folders stay in outbox/, emptied: an editor saving the
	// next version into one must find it.
	if fi, err := os.Stat(filepath.Join(a.root, "outbox", "tree", "sub")); err != nil || !fi.IsDir() {
		t.Errorf("outbox/tree/sub after delivery: %v, want the folder kept", err)
	}
	ents, _ := os.ReadDir(filepath.Join(b.root, "inbox", partialsName))
	if len(ents) != 0 {
		t.Errorf("partials left after delivery: %v", ents)
	}
	chat, _ := os.ReadFile(b.engine().ChatLogPath())
	if !strings.Contains(string(chat), "* alice sent multi.bin (327.8 kB) -> inbox/alice/multi.bin") {
		t.Errorf("chat log lacks the delivery line:\n%s", chat)
	}
}

func TestTransferNameClash(t *testing.T) {
	_, a, b := pair(t, nil)
	steps := []struct {
		rel, want string
	}{
		{"same.txt", "inbox/alice/same.txt"},
		{"same.txt", "inbox/alice/same (1).txt"},
		{"README", "inbox/alice/README"},
		{"readme", "inbox/alice/readme (1)"},
		{"caf\u00e9.txt", "inbox/alice/caf\u00e9.txt"},
		{"cafe\u0301.txt", "inbox/alice/caf\u00e9 (1).txt"}, // NFD: normalised, clashes
	}
	for i, s := range steps {
		data := randBytes(uint64(100+i), 50+i)
		a.put(s.rel, data)
		b.waitFile(s.want, data)
		a.waitGone("outbox/" + s.rel)
	}
}

// TestTransferResumeAfterCut cuts the link after a few chunks and checks
// that the second attempt sends only the missing blocks.
func TestTransferResumeAfterCut(t *testing.T) {
	for _, mode := range hashModes {
		t.Run(mode.name, func(t *testing.T) { testResumeAfterCut(t, mode.edit) })
	}
}

func testResumeAfterCut(t *testing.T, edit func(*Config)) {
	n, a, b := pair(t, edit)
	const blocks = 12
	data := randBytes(7, blocks*minBlockSize)
	cut := cutAtChunk(n, a, b, 5)
	a.put("big.bin", data)
	<-cut
	n.mu.Lock()
	n.mutate = nil
	n.mu.Unlock()
	held := pausedBlocks(t, b)
	if held == 0 {
		t.Fatalf("no block arrived before the cut")
	}
	before := n.delivered.Load()
	n.connect(a, b)
	b.waitFile("inbox/alice/big.bin", data)
	if resent := n.delivered.Load() - before; resent != int64(blocks-held) {
		t.Errorf("chunks after reconnect = %d, want %d", resent, blocks-held)
	}
	a.waitFile("sent/big.bin", data)
}

// cutAtChunk cuts the link between a and b when chunk number at (from 1)
// is on its way, after letting the ones before it land: the connection
// drops with that chunk in flight. The channel closes once it is cut.
func cutAtChunk(n *fakeNet, a, b *fakeNode, at int) <-chan struct{} {
	return cutWhen(n, a, b, at, func() { heldBlocks(b, at-1) })
}

// cutWhen cuts the link between a and b when CHUNK number at (from 1) is
// on its way, once landed returned, and drops that CHUNK. The channel
// closes once it is cut.
func cutWhen(n *fakeNet, a, b *fakeNode, at int, landed func()) <-chan struct{} {
	cut := make(chan struct{})
	var sent int
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mutate = func(from, to mesh.PeerID, d []byte) []byte {
		if d[0] != byte(kindChunk) {
			return d
		}
		if sent++; sent == at {
			landed()
			n.cut(a, b)
			close(cut)
			return nil
		}
		return d
	}
	return cut
}

// pausedBlocks waits until the receiver's partial is no longer being
// written (its connection is gone) and returns how many blocks it holds.
func pausedBlocks(t *testing.T, fn *fakeNode) int {
	t.Helper()
	held := -1
	err := testutil.WaitFor(effectTimeout, func() error {
		for _, tr := range fn.engine().Status().Transfers {
			if tr.Direction == "receive" && tr.State == "paused" {
				held = int(tr.Done / minBlockSize)
				return nil
			}
		}
		return os.ErrNotExist
	})
	if err != nil {
		t.Fatalf("paused partial: %v", err)
	}
	return held
}

// waitPartialBlocks waits until the receiver holds want blocks of a partial.
func waitPartialBlocks(t *testing.T, fn *fakeNode, want int) {
	t.Helper()
	if err := heldBlocks(fn, want); err != nil {
		t.Fatalf("partial with %d blocks: %v", want, err)
	}
}

// heldBlocks polls until the receiver holds want blocks of a partial.
func heldBlocks(fn *fakeNode, want int) error {
	return testutil.WaitFor(effectTimeout, func() error {
		for _, tr := range fn.engine().Status().Transfers {
			if tr.Direction == "receive" && tr.Done == int64(want*minBlockSize) {
				return nil
			}
		}
		return os.ErrNotExist
	})
}

// TestTransferReceiverRestart restarts the receiving engine mid-transfer:
// it resumes from the partial on disk. A streamed partial has nothing to
// check its blocks against after a restart, so it starts again.
func TestTransferReceiverRestart(t *testing.T) {
	const blocks = 10
	for _, mode := range hashModes {
		resent := int64(blocks + 1 - 5)
		if mode.edit != nil {
			resent = blocks + 1
		}
		t.Run(mode.name, func(t *testing.T) { testReceiverRestart(t, mode.edit, resent) })
	}
}

func testReceiverRestart(t *testing.T, edit func(*Config), wantResent int64) {
	n, a, b := pair(t, edit)
	const blocks = 10
	data := randBytes(8, blocks*minBlockSize+77)
	cut := cutAtChunk(n, a, b, 6)
	a.put("r.bin", data)
	<-cut
	waitPartialBlocks(t, b, 5)
	b.closeEngine()
	b.open()
	b.start()
	since := n.heal(a, b)
	b.waitFile("inbox/alice/r.bin", data)
	if resent := since(); resent != wantResent {
		t.Errorf("chunks after restart = %d, want %d", resent, wantResent)
	}
}

// TestTransferCorruptChunk flips a bit in one chunk: the block is dropped
// with ErrChecksum (on arrival, or when a streamed file's manifest comes
// with DONE), asked for again, and the file arrives intact.
func TestTransferCorruptChunk(t *testing.T) {
	for _, mode := range hashModes {
		t.Run(mode.name, func(t *testing.T) { testCorruptChunk(t, mode.edit) })
	}
}

func testCorruptChunk(t *testing.T, edit func(*Config)) {
	n, a, b := pair(t, edit)
	errs := make(chan error, 16)
	b.engine().errHook = func(err error) { errs <- err }
	data := randBytes(9, 4*minBlockSize)
	flipped := false
	n.mu.Lock()
	n.mutate = func(from, to mesh.PeerID, d []byte) []byte {
		if d[0] == byte(kindChunk) && !flipped && d[20] == 2 { // block index 2
			flipped = true
			d[chunkHeaderLen+100] ^= 0x10
		}
		return d
	}
	n.mu.Unlock()
	a.put("c.bin", data)
	b.waitFile("inbox/alice/c.bin", data)
	select {
	case err := <-errs:
		if !isChecksum(err) {
			t.Errorf("error = %v, want ErrChecksum", err)
		}
	default:
		t.Errorf("no ErrChecksum reported")
	}
	if got := b.engine().Status().ChecksumErrors; got != 1 {
		t.Errorf("ChecksumErrors = %d, want 1", got)
	}
}

// TestTransferOfflineMember: a member offline at send time gets the file
// when it connects; the file moves to sent/ only after both ACKed.
func TestTransferOfflineMember(t *testing.T) {
	n := newFakeNet(t)
	a, b, c := n.addNode("alice", nil), n.addNode("bob", nil), n.addNode("carol", nil)
	a.start()
	b.start()
	c.start()
	n.connect(a, b)
	data := randBytes(10, 2*minBlockSize+5)
	a.put("late.txt", data)
	b.waitFile("inbox/alice/late.txt", data)
	if !exists(filepath.Join(a.root, "outbox", "late.txt")) {
		t.Fatalf("outbox file moved before carol had it")
	}
	if st := a.engine().Status(); !hasQueued(st, "carol") {
		t.Errorf("Status() = %+v, want carol with 1 queued", st.Peers)
	}
	n.connect(a, c)
	c.waitFile("inbox/alice/late.txt", data)
	a.waitFile("sent/late.txt", data)
}

func hasQueued(st Status, name string) bool {
	for _, p := range st.Peers {
		if p.Name == name && p.Queued == 1 {
			return true
		}
	}
	return false
}

// TestTransferNoSpace: the receiver lacks space => REJECT NOSPACE, the
// delivery stays queued and succeeds once space is back.
func TestTransferNoSpace(t *testing.T) {
	n := newFakeNet(t)
	a, b := n.addNode("alice", nil), n.addNode("bob", nil)
	var full = true
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	b.engine().freeSpace = func(string) (uint64, uint64, error) {
		<-mu
		defer func() { mu <- struct{}{} }()
		if full {
			return 1 << 20, 1 << 30, nil
		}
		return 1 << 30, 2 << 30, nil
	}
	a.start()
	b.start()
	n.connect(a, b)
	data := randBytes(11, 100)
	a.put("x.txt", data)
	err := testutil.WaitFor(effectTimeout, func() error {
		table := string(a.engine().PeersTable())
		if !strings.Contains(table, "refused: no space left on bob's disk") {
			return os.ErrNotExist
		}
		return nil
	})
	if err != nil {
		t.Fatalf("PeersTable never showed the refusal: %v\n%s", err, a.engine().PeersTable())
	}
	if !exists(filepath.Join(a.root, "outbox", "x.txt")) {
		t.Fatalf("refused file left the outbox")
	}
	<-mu
	full = false
	mu <- struct{}{}
	b.waitFile("inbox/alice/x.txt", data)
	a.waitGone("outbox/x.txt")
}

// TestTransferRemoved cancels a queued transfer when its file is deleted.
func TestTransferRemoved(t *testing.T) {
	n := newFakeNet(t)
	a, _ := n.addNode("alice", nil), n.addNode("bob", nil)
	a.start()
	a.put("gone.txt", []byte("x"))
	err := testutil.WaitFor(effectTimeout, func() error {
		if len(a.engine().Status().Transfers) != 1 {
			return os.ErrNotExist
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(a.root, "outbox", "gone.txt"))
	a.engine().OutboxRemoved("gone.txt")
	err = testutil.WaitFor(effectTimeout, func() error {
		if len(a.engine().Status().Transfers) != 0 {
			return os.ErrExist
		}
		ents, _ := os.ReadDir(filepath.Join(a.st, "outgoing"))
		if len(ents) != 0 {
			return os.ErrExist
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTransferWriteENOSPC: the disk fills up mid-transfer => REJECT
// NOSPACE, partial deleted, node alive; the sender retries and succeeds.
func TestTransferWriteENOSPC(t *testing.T) {
	n := newFakeNet(t)
	a, b := n.addNode("alice", nil), n.addNode("bob", nil)
	var failing atomic.Bool
	failing.Store(true)
	b.engine().writeAt = func(f *os.File, d []byte, off int64) (int, error) {
		if failing.Load() && off > 0 {
			return 0, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
		}
		return f.WriteAt(d, off)
	}
	a.start()
	b.start()
	n.connect(a, b)
	data := randBytes(12, 3*minBlockSize)
	a.put("full.bin", data)
	waitFor(t, func() bool { return strings.Contains(string(a.engine().PeersTable()), "no space left on bob's disk") })
	waitFor(t, func() bool {
		ents, _ := os.ReadDir(filepath.Join(b.root, "inbox", partialsName))
		return len(ents) == 0
	})
	say(t, b, "still alive")
	waitChat(t, a, []string{"bob: still alive"})
	failing.Store(false)
	b.waitFile("inbox/alice/full.bin", data)
	a.waitGone("outbox/full.bin")
}

// TestTransferEveryoneSends: three members send to each other at once with
// tiny queues; nothing deadlocks and every file arrives.
func TestTransferEveryoneSends(t *testing.T) {
	n := newFakeNet(t)
	small := func(c *Config) { c.QueueLen = 1; c.MaxOffersInFlight = 2 }
	nodes := []*fakeNode{n.addNode("alice", small), n.addNode("bob", small), n.addNode("carol", small)}
	for _, fn := range nodes {
		fn.start()
	}
	n.connect(nodes[0], nodes[1])
	n.connect(nodes[1], nodes[2])
	n.connect(nodes[0], nodes[2])
	files := map[string][]byte{}
	for i, fn := range nodes {
		for j := range 3 {
			rel := fmt.Sprintf("%s-%d.bin", fn.name, j)
			files[rel] = randBytes(uint64(40+10*i+j), (j+1)*minBlockSize+i)
			fn.put(rel, files[rel])
		}
	}
	for _, from := range nodes {
		for _, to := range nodes {
			if from == to {
				continue
			}
			for j := range 3 {
				rel := fmt.Sprintf("%s-%d.bin", from.name, j)
				to.waitFile("inbox/"+from.name+"/"+rel, files[rel])
			}
		}
	}
}

// TestTransferManyFiles: many small files at once stay within bounded
// descriptors and all arrive.
func TestTransferManyFiles(t *testing.T) {
	n := newFakeNet(t)
	a, b := n.addNode("alice", nil), n.addNode("bob", nil)
	a.start()
	b.start()
	const files = 300
	for i := range files {
		p := filepath.Join(a.root, "outbox", "many", fmt.Sprintf("f%03d.txt", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(fmt.Sprint(i)), 0o644)
	}
	fdsBefore := openFDs(t)
	a.engine().OutboxClosed("many") // a folder renamed in
	n.connect(a, b)
	maxFDs := 0
	waitFor(t, func() bool {
		maxFDs = max(maxFDs, openFDs(t))
		ents, _ := os.ReadDir(filepath.Join(b.root, "inbox", "alice", "many"))
		return len(ents) == files
	})
	if maxFDs-fdsBefore > 64 {
		t.Errorf("open descriptors grew by %d while sending %d files", maxFDs-fdsBefore, files)
	}
	a.waitGone("outbox/many/f299.txt")
	waitFor(t, func() bool {
		ents, _ := os.ReadDir(filepath.Join(a.root, "sent", "many"))
		return len(ents) == files
	})
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestPeerReasonRedacts: what a REJECT tells the member never holds a
// local path or OS error text; the refusals and name checks are kept.
func TestPeerReasonRedacts(t *testing.T) {
	ib := &inbound{env: &env{}}
	local := &os.PathError{Op: "open", Path: "/home/bob/.local/state/meshfs/x.part", Err: syscall.EIO}
	_, nameErr := validatePath("a/NUL")
	tests := []struct {
		err  error
		want string
	}{
		{local, "this node could not store the file (see its log)"},
		{fmt.Errorf("write block: %w", &os.PathError{Op: "write", Path: "/srv/p", Err: syscall.ENOSPC}), "no space left on this node's disk"},
		{fmt.Errorf("whole file: %w", ErrChecksum), "the file did not match its checksums"},
		{refused(rejectBusy, "too many transfers at once, try later"), "too many transfers at once, try later"},
		{nameErr, `unsafe or unportable name: component "NUL" is a device name`},
	}
	for _, tc := range tests {
		if got := ib.peerReason(tc.err); got != tc.want {
			t.Errorf("peerReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
