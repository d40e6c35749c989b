package sync

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meshfs/meshfs/mesh"
)

// trio starts alice, bob and carol on one fake net, none linked yet.
func trio(t *testing.T) (*fakeNet, *fakeNode, *fakeNode, *fakeNode) {
	n := newFakeNet(t)
	a, b, c := n.addNode("alice", nil), n.addNode("bob", nil), n.addNode("carol", nil)
	for _, fn := range []*fakeNode{a, b, c} {
		fn.start()
	}
	return n, a, b, c
}

// TestFileRelays: alice and carol are never linked; bob between them
// passes alice's file, a folder and a link on to carol, under alice's
// name, and carol's receipt reaches alice through bob, who then moves the
// file to sent/.
func TestFileRelays(t *testing.T) {
	n, a, b, c := trio(t)
	n.connect(a, b)
	n.connect(b, c)
	data := randBytes(1, 3*minBlockSize+17)
	a.mkdir("tree/empty")
	a.put("tree/report.bin", data)
	a.symlink("tree/link", "report.bin")
	c.waitFile("inbox/alice/tree/report.bin", data)
	waitFor(t, func() bool { // a folder goes once it stayed empty for DotHold
		fi, err := os.Stat(filepath.Join(c.root, "inbox", "alice", "tree", "empty"))
		return err == nil && fi.IsDir()
	})
	waitFor(t, func() bool {
		target, err := os.Readlink(filepath.Join(c.root, "inbox", "alice", "tree", "link"))
		return err == nil && target == "report.bin"
	})
	a.waitFile("sent/tree/report.bin", data) // carol's receipt came through bob
	waitFor(t, func() bool { return len(b.engine().Status().Transfers) == 0 })
}

// TestFileWhileAuthorAway: carol is away while alice shares a file; alice
// is gone when carol comes back and bob gives it to her; alice, back,
// moves it to sent/ on the receipt without sending a block again.
func TestFileWhileAuthorAway(t *testing.T) {
	n, a, b, c := trio(t)
	n.connect(a, b)
	data := randBytes(2, 5*minBlockSize)
	a.put("away.bin", data)
	b.waitFile("inbox/alice/away.bin", data)
	n.cut(a, b)
	n.connect(b, c)
	c.waitFile("inbox/alice/away.bin", data)
	if !exists(filepath.Join(a.root, "outbox", "away.bin")) {
		t.Fatal("alice moved the file while carol's receipt could not reach her")
	}
	before := n.chunkBytes.Load()
	n.connect(a, c)
	a.waitFile("sent/away.bin", data)
	if sent := n.chunkBytes.Load() - before; sent != 0 {
		t.Errorf("%d bytes of blocks sent after alice came back; carol had the file", sent)
	}
	if exists(filepath.Join(c.root, "inbox", "alice", "away (1).bin")) {
		t.Error("carol placed the file twice")
	}
}

// TestFileRelayLiarFoundOut: mallory damages every block she passes on;
// carol gets alice's file whole from bob anyway, and names mallory.
func TestFileRelayLiarFoundOut(t *testing.T) {
	n := newFakeNet(t)
	a, b, c, m := n.addNode("alice", nil), n.addNode("bob", nil), n.addNode("carol", nil), n.addNode("mallory", nil)
	n.mutate = func(from, to mesh.PeerID, d []byte) []byte {
		if from == m.id && kind(d[0]) == kindChunk && len(d) > chunkHeaderLen {
			d[len(d)-1] ^= 0xff
		}
		return d
	}
	for _, fn := range []*fakeNode{a, b, c, m} {
		fn.start()
	}
	n.connect(a, b)
	n.connect(a, m)
	data := randBytes(3, 4*minBlockSize+5)
	a.put("true.bin", data)
	b.waitFile("inbox/alice/true.bin", data)
	m.waitFile("inbox/alice/true.bin", data)
	n.cut(a, b)
	n.cut(a, m)
	n.connect(m, c) // mallory first: her damaged blocks are refused
	waitFor(t, func() bool { return peerStatus(c, m.id).BadData > 0 })
	n.connect(b, c)
	c.waitFile("inbox/alice/true.bin", data)
	if got := peerStatus(c, b.id).BadData; got != 0 {
		t.Errorf("bob, who passed the file on intact, has %d bad data", got)
	}
}

// TestFileFansOut: a large file to four members leaves alice about once:
// she sends it to one at a time, and each passes it on while it comes in.
func TestFileFansOut(t *testing.T) {
	n := newFakeNet(t)
	a := n.addNode("alice", nil)
	others := []*fakeNode{n.addNode("bob", nil), n.addNode("carol", nil), n.addNode("dave", nil), n.addNode("erin", nil)}
	all := append([]*fakeNode{a}, others...)
	for _, fn := range all {
		fn.start()
	}
	for i, x := range all {
		for _, y := range all[i+1:] {
			n.connect(x, y)
		}
	}
	data := randBytes(5, 96*minBlockSize) // 6 MiB: over StreamMinSize
	a.put("big.bin", data)
	for _, fn := range others {
		fn.waitFile("inbox/alice/big.bin", data)
	}
	a.waitFile("sent/big.bin", data)
	if sent := a.sentBlocks.Load(); sent > int64(len(data))*3/2 {
		t.Errorf("alice sent %d bytes of blocks for a %d-byte file to 4 members; want about one copy", sent, len(data))
	}
	t.Logf("alice sent %.2f copies; the others %d, %d, %d, %d bytes", float64(a.sentBlocks.Load())/float64(len(data)),
		others[0].sentBlocks.Load(), others[1].sentBlocks.Load(), others[2].sentBlocks.Load(), others[3].sentBlocks.Load())
}

// TestTwoOffersOneFile: two members offering one file at the same moment
// make one partial; the second, if it does not wait for the first
// (awaitCreating), is told busy and offers again later.
func TestTwoOffersOneFile(t *testing.T) {
	_, _, b := pair(t, nil)
	ib := b.engine().in
	k := inKey{mesh.PeerID{7}, transferID{1}}
	data := randBytes(6, minBlockSize)
	meta := partialMeta{Hash: blockHashName, Peer: k.peer.String(), ID: k.id, Path: "one.bin", Size: uint64(len(data)),
		BlockSize: minBlockSize, Blocks: []hash32{blockSum(data)}, FileHash: fileHashOf(uint64(len(data)), minBlockSize, []hash32{blockSum(data)})}
	ib.mu.Lock()
	ib.creating[k] = make(chan struct{}) // the first offer is making it
	ib.mu.Unlock()
	if err := ib.createPartial(k, meta); ioCode(err) != rejectBusy {
		t.Errorf("second offer while the first makes the partial: %v, want busy", err)
	}
	ib.mu.Lock()
	delete(ib.creating, k)
	ib.mu.Unlock()
	if err := ib.createPartial(k, meta); err != nil {
		t.Fatal(err)
	}
	if err := ib.createPartial(k, meta); ioCode(err) != rejectBusy {
		t.Errorf("offer after the partial was made: %v, want busy", err)
	}
}

// TestFileFansOutWithoutRelays: the members cannot reach each other, so
// alice sends the large file to each in turn: the end of one upload wakes
// the senders that waited for it.
func TestFileFansOutWithoutRelays(t *testing.T) {
	n := newFakeNet(t)
	a := n.addNode("alice", nil)
	others := []*fakeNode{n.addNode("bob", nil), n.addNode("carol", nil), n.addNode("dave", nil)}
	a.start()
	for _, fn := range others {
		fn.start()
		n.connect(a, fn)
	}
	data := randBytes(7, 80*minBlockSize) // 5 MiB: over StreamMinSize
	a.put("big.bin", data)
	for _, fn := range others {
		fn.waitFile("inbox/alice/big.bin", data)
	}
	a.waitFile("sent/big.bin", data)
}
