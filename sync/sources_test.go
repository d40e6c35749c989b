package sync

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
	"github.com/meshfs/meshfs/mesh"
)

// holders starts alice, bob, carol and dave with small fetch windows;
// bob and carol get alice's file, then alice goes away. Dave, not linked
// yet, is to get it from bob and carol.
// Dave's Config also gets daveCfg, if any.
func holders(t *testing.T, data []byte, daveCfg func(*Config)) (n *fakeNet, a, b, c, d *fakeNode) {
	n = newFakeNet(t)
	small := func(c *Config) { c.FetchWindow = 4 * minBlockSize }
	a = n.addNode("alice", small)
	b, c = n.addNode("bob", small), n.addNode("carol", small)
	d = n.addNode("dave", func(c *Config) {
		small(c)
		if daveCfg != nil {
			daveCfg(c)
		}
	})
	for _, fn := range []*fakeNode{a, b, c, d} {
		fn.start()
	}
	n.connect(a, b)
	n.connect(a, c)
	a.put("both.bin", data)
	b.waitFile("inbox/alice/both.bin", data)
	c.waitFile("inbox/alice/both.bin", data)
	n.cut(a, b)
	n.cut(a, c)
	return n, a, b, c, d
}

// gateUntil makes every CHUNK to d wait until ready (at most 10 s): so
// that both holders are sure to take part however fast the first one is;
// then edit, if any, changes the CHUNK.
func gateUntil(t *testing.T, n *fakeNet, d *fakeNode, ready func() error, edit func(from mesh.PeerID, data []byte)) {
	var open atomic.Bool
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mutate = func(from, to mesh.PeerID, data []byte) []byte {
		if to != d.id || kind(data[0]) != kindChunk {
			return data
		}
		if !open.Load() {
			if err := testutil.WaitFor(10*time.Second, ready); err != nil {
				t.Errorf("chunks to dave held in vain: %v", err)
			}
			open.Store(true)
		}
		if edit != nil {
			edit(from, data)
		}
		return data
	}
}

// twoSources is ready once a transfer at fn comes from two members.
func twoSources(fn *fakeNode) func() error {
	return func() error {
		if sourcesAt(fn) < 2 {
			return errors.New("one source")
		}
		return nil
	}
}

// sourcesAt is the most sources a transfer at fn has now.
func sourcesAt(fn *fakeNode) int {
	ib := fn.engine().in
	ib.mu.Lock()
	defer ib.mu.Unlock()
	most := 0
	for _, t := range ib.transfers {
		most = max(most, len(t.sources))
	}
	return most
}

// TestFileFromSeveral: dave takes alice's file from bob and carol at
// once, each block from one of them, and his status says so; alice, back,
// is told, shows "fetching from bob, carol" for dave, and does not send
// it herself.
func TestFileFromSeveral(t *testing.T) {
	data := randBytes(21, 40*minBlockSize+9)
	n, a, b, c, d := holders(t, data, nil)
	fetching := func() error {
		if states, _ := a.engine().Delivery("both.bin"); !strings.HasPrefix(states["dave"], "fetching from bob, carol ") {
			return fmt.Errorf("alice shows %q for dave", states["dave"])
		}
		for _, tr := range d.engine().Status().Transfers {
			if tr.Direction == "receive" && tr.State != "receiving from bob, carol" {
				return fmt.Errorf("dave shows %q for %s", tr.State, tr.Path)
			}
		}
		return nil
	}
	gateUntil(t, n, d, fetching, nil)
	fromA, fromB, fromC := a.sentBlocks.Load(), b.sentBlocks.Load(), c.sentBlocks.Load()
	n.connect(b, d)
	n.connect(c, d)
	waitFor(t, func() bool { return twoSources(d)() == nil })
	n.connect(a, d)
	d.waitFile("inbox/alice/both.bin", data)
	a.waitFile("sent/both.bin", data)
	if sent := a.sentBlocks.Load() - fromA; sent != 0 {
		t.Errorf("alice sent %d bytes of blocks to dave, who had them from bob and carol", sent)
	}
	fromB, fromC = b.sentBlocks.Load()-fromB, c.sentBlocks.Load()-fromC
	t.Logf("dave took %d bytes from bob, %d from carol, of %d", fromB, fromC, len(data))
	if fromB == 0 || fromC == 0 {
		t.Errorf("dave took %d bytes from bob and %d from carol; want some from each", fromB, fromC)
	}
	if fromB+fromC > int64(len(data))+4*minBlockSize {
		t.Errorf("bob and carol sent %d bytes for a %d-byte file: blocks asked of both", fromB+fromC, len(data))
	}
}

// TestFileFromSeveralOneLies: carol damages every block she sends dave
// while bob sends his share intact; dave drops hers, asks bob for them,
// ends with the true file and counts the bad data against carol alone.
func TestFileFromSeveralOneLies(t *testing.T) {
	data := randBytes(22, 40*minBlockSize+9)
	n, _, b, c, d := holders(t, data, nil)
	gateUntil(t, n, d, twoSources(d), func(from mesh.PeerID, msg []byte) {
		if from == c.id && len(msg) > chunkHeaderLen {
			msg[len(msg)-1] ^= 0xff
		}
	})
	n.connect(b, d)
	n.connect(c, d)
	d.waitFile("inbox/alice/both.bin", data)
	if got := peerStatus(d, c.id).BadData; got == 0 {
		t.Error("carol's damaged blocks not counted against her")
	}
	if got := peerStatus(d, b.id).BadData; got != 0 {
		t.Errorf("bob, who sent his blocks intact, has %d bad data", got)
	}
}

// TestIdleSourceKeptAlive: carol sends slowly and starts first, bob joins
// and sends fast; once every missing block is asked of carol, bob has
// nothing to send but is asked for an empty window on dave's tick, so his
// sender hears from dave and does not give up on him while carol
// finishes.
func TestIdleSourceKeptAlive(t *testing.T) {
	data := randBytes(23, 40*minBlockSize+9)
	n, _, b, c, d := holders(t, data, func(c *Config) { c.InboundIdle = 400 * time.Millisecond }) // ticks every 200 ms
	var keepAlives atomic.Int64
	n.mu.Lock()
	n.mutate = func(from, to mesh.PeerID, data []byte) []byte {
		switch {
		case from == c.id && to == d.id && kind(data[0]) == kindChunk:
			time.Sleep(200 * time.Millisecond) // carol's uplink is slow
		case from == d.id && to == b.id && kind(data[0]) == kindAccept:
			if m, err := decodeMessage(data); err == nil && m.(*acceptMsg).Have.count() == m.(*acceptMsg).Have.n {
				keepAlives.Add(1)
			}
		}
		return data
	}
	n.mu.Unlock()
	n.connect(c, d)
	waitFor(t, func() bool { return sourcesAt(d) == 1 })
	n.connect(b, d)
	d.waitFile("inbox/alice/both.bin", data)
	if keepAlives.Load() == 0 {
		t.Error("bob, idle while carol sent the last blocks, was never asked for an empty window")
	}
}

// TestSlowSourceRelieved: carol sends slowly, bob fast; when bob has
// nothing left to send, he takes the window carol was asked for next and
// has not begun, so carol sends one window and no more, and no block
// comes twice.
func TestSlowSourceRelieved(t *testing.T) {
	data := randBytes(24, 40*minBlockSize+9)
	n, _, b, c, d := holders(t, data, nil)
	gateUntil(t, n, d, twoSources(d), func(from mesh.PeerID, msg []byte) {
		if from == c.id {
			// carol's uplink is slow: bob, even under -race on a busy
			// machine, sends the rest before her first window is half done.
			time.Sleep(300 * time.Millisecond)
		}
	})
	fromB, fromC := b.sentBlocks.Load(), c.sentBlocks.Load()
	n.connect(b, d)
	n.connect(c, d)
	d.waitFile("inbox/alice/both.bin", data)
	fromB, fromC = b.sentBlocks.Load()-fromB, c.sentBlocks.Load()-fromC
	t.Logf("dave took %d bytes from bob, %d from carol", fromB, fromC)
	if window := int64(4 * minBlockSize); fromC > window+2*minBlockSize { // a block or two may be on its way
		t.Errorf("slow carol sent dave %d bytes; want about one window (%d): bob, free, should take the rest", fromC, window)
	}
	if fromB+fromC > int64(len(data))+2*minBlockSize {
		t.Errorf("bob and carol sent %d bytes for a %d-byte file", fromB+fromC, len(data))
	}
}

// stallQuick is dave's Config for the stall tests: a source stalls after
// 300 ms, and nothing else would free its blocks before the test's end.
func stallQuick(c *Config) {
	c.SourceStall = 300 * time.Millisecond
	c.InboundIdle = 10 * time.Minute
}

// TestStalledSourceGivesWay: carol sends dave two blocks and then
// nothing more, holding her windows, while bob sends fast; the blocks
// asked of carol are asked of bob once she has stalled, and dave ends
// with the file long before InboundIdle would have freed them.
func TestStalledSourceGivesWay(t *testing.T) {
	data := randBytes(25, 40*minBlockSize+9)
	n, _, b, d := carolStalls(t, data)
	n.connect(b, d)
	d.waitFile("inbox/alice/both.bin", data)
}

// carolStalls starts holders, dave with stallQuick, and makes carol
// dave's only source, who stops after two blocks.
func carolStalls(t *testing.T, data []byte) (n *fakeNet, a, b, d *fakeNode) {
	n, a, b, c, d := holders(t, data, stallQuick)
	n.gate(c, d, 2)
	n.connect(c, d)
	waitFor(t, func() bool { return sourcesAt(d) == 1 })
	return n, a, b, d
}

// TestStalledRelayLetsAuthorIn: carol, dave's only source, stalls (as a
// member passing on a file it no longer receives does); alice, the
// author, whose offers were refused while carol sent, is taken once
// carol has stalled, and dave ends with the file from her.
func TestStalledRelayLetsAuthorIn(t *testing.T) {
	data := randBytes(26, 40*minBlockSize+9)
	n, a, _, d := carolStalls(t, data)
	fromA := a.sentBlocks.Load()
	n.connect(a, d)
	d.waitFile("inbox/alice/both.bin", data)
	if a.sentBlocks.Load() == fromA {
		t.Error("dave has the file, but alice sent him nothing: carol was not stalled")
	}
}

// TestSlowSourceNotStalled: carol's first block comes after 250 ms, the
// next ones 700 ms apart, longer than dave's 500 ms SourceStall but
// steady: she is slow, not stalled, so alice's offers stay refused and
// alice sends dave nothing.
func TestSlowSourceNotStalled(t *testing.T) {
	data := randBytes(27, 4*minBlockSize+9)
	n, a, _, c, d := holders(t, data, func(c *Config) { c.SourceStall = 500 * time.Millisecond })
	var sent atomic.Int64
	n.mu.Lock()
	n.mutate = func(from, to mesh.PeerID, msg []byte) []byte {
		if from == c.id && to == d.id && kind(msg[0]) == kindChunk {
			if sent.Add(1) == 1 {
				time.Sleep(250 * time.Millisecond)
			} else {
				time.Sleep(700 * time.Millisecond)
			}
		}
		return msg
	}
	n.mu.Unlock()
	n.connect(c, d)
	waitFor(t, func() bool { return sourcesAt(d) == 1 })
	fromA := a.sentBlocks.Load()
	n.connect(a, d)
	d.waitFile("inbox/alice/both.bin", data)
	if sent := a.sentBlocks.Load() - fromA; sent != 0 {
		t.Errorf("alice sent dave %d bytes while carol, slow but steady, sent him the file", sent)
	}
}

// TestStuckTransferTakesAnyone: the rules of addSourceLocked, on a
// transfer of 8 blocks. A member that does not hold the file is refused
// while a source sends; once that source has stalled, it is taken and the
// stalled source's blocks go back; and when it stalls in turn, while the
// first waits for the DONEs of windows it no longer owes blocks of,
// a third is taken too: nothing else is coming.
func TestStuckTransferTakesAnyone(t *testing.T) {
	meta := partialMeta{Size: 8 * minBlockSize, BlockSize: minBlockSize, Blocks: make([]hash32, 8)}
	tr := newInTransfer(inKey{}, meta)
	tr.have = newBitmap(8)
	now, stall := time.Now(), 5*time.Second
	add := func(name string, holder bool) *source {
		s, ok := tr.addSourceLocked(&peerConn{}, holder, now, stall)
		if !ok {
			t.Fatalf("%s refused", name)
		}
		return s
	}
	refused := func(name string) {
		if _, ok := tr.addSourceLocked(&peerConn{}, false, now, stall); ok {
			t.Fatalf("%s, who does not hold the file, taken while a source sends", name)
		}
	}
	window := func(s *source) {
		w, ok := tr.nextWindowLocked(s, 4*minBlockSize)
		if !ok {
			t.Fatal("no blocks left to ask for")
		}
		s.windows = append(s.windows, w)
	}
	a := add("a", false) // the first source is taken whoever it is
	window(a)
	now = now.Add(time.Second)
	refused("b")
	now = now.Add(2 * stall)
	b := add("b", false)
	if tr.owesLocked(a) || tr.asked.count() != 0 {
		t.Fatalf("a stalled, b taken, but a still owes blocks (%d asked)", tr.asked.count())
	}
	window(b)
	now = now.Add(time.Second)
	refused("c")
	now = now.Add(2 * stall)
	add("c", false)
	if tr.owesLocked(b) {
		t.Fatal("b stalled, c taken, but b still owes blocks")
	}
}
