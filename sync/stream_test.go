package sync

import (
	"path/filepath"
	"testing"
)

// sendChunks sends every block of data without DONE.
func sendChunks(ev *evilPeer, to *fakeNode, id transferID, data []byte) {
	for i := 0; i*minBlockSize < len(data); i++ {
		ev.sendTo(to, &chunkMsg{ID: id, Index: uint32(i), Data: data[i*minBlockSize : min((i+1)*minBlockSize, len(data))]})
	}
}

// streamedOffer is offerOf without the block hashes, and the DONE that
// carries them.
func streamedOffer(id transferID, path string, data []byte) (*offerMsg, *doneMsg) {
	full := offerOf(id, path, data)
	offer := *full
	offer.FileHash, offer.Blocks = hash32{}, []hash32{}
	return &offer, &doneMsg{ID: id, FileHash: full.FileHash, Blocks: full.Blocks}
}

// TestEvilStreamedDone: the manifest of a streamed file is checked when it
// comes. A DONE without it, with a file hash that does not bind its block
// hashes, or with the wrong number of them is refused and leaves no file; an
// honest one after blocks that differ from it gets them asked for again.
func TestEvilStreamedDone(t *testing.T) {
	n := newFakeNet(t)
	b := n.addNode("bob", nil)
	b.start()
	ev := newEvil(t, n, "mallory", b)
	data := randBytes(41, 3*minBlockSize+5)
	tests := []struct {
		name string
		done func(*doneMsg) *doneMsg
	}{
		{"no manifest", func(d *doneMsg) *doneMsg { return &doneMsg{ID: d.ID} }},
		{"file hash unbound", func(d *doneMsg) *doneMsg { d.FileHash[0] ^= 1; return d }},
		{"block count", func(d *doneMsg) *doneMsg { d.Blocks = d.Blocks[1:]; return d }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			offer, done := streamedOffer(transferID{byte(i + 1)}, tc.name+".bin", data)
			ev.sendTo(b, offer)
			if a, ok := ev.next().(*acceptMsg); !ok || a.Have.n != 4 {
				t.Fatalf("reply = %+v, want ACCEPT of 4 blocks", a)
			}
			sendChunks(ev, b, offer.ID, data)
			ev.sendTo(b, tc.done(done))
			if r, ok := ev.next().(*rejectMsg); !ok || r.ID != offer.ID {
				t.Fatalf("reply = %+v, want REJECT", r)
			}
			if exists(filepath.Join(b.root, "inbox", "mallory", tc.name+".bin")) {
				t.Errorf("file put in place")
			}
		})
	}

	t.Run("blocks differ", func(t *testing.T) {
		offer, done := streamedOffer(transferID{9}, "differ.bin", data)
		ev.sendTo(b, offer)
		ev.next()
		bad := append([]byte(nil), data...)
		bad[minBlockSize+1] ^= 1 // block 1
		sendChunks(ev, b, offer.ID, bad)
		ev.sendTo(b, done)
		a, ok := ev.next().(*acceptMsg)
		if !ok || a.Have.has(1) || a.Have.count() != 3 {
			t.Fatalf("reply = %+v, want ACCEPT asking for block 1 only", a)
		}
		ev.sendTo(b, &chunkMsg{ID: offer.ID, Index: 1, Data: data[minBlockSize : 2*minBlockSize]})
		ev.sendTo(b, &doneMsg{ID: offer.ID})
		if _, ok := ev.next().(*ackMsg); !ok {
			t.Fatalf("want ACK")
		}
		b.waitFile("inbox/mallory/differ.bin", data)
	})
	noFileOutside(t, b, "mallory")
}

// TestStreamSenderRestart: the sender stops in the middle of a streamed
// file, before it has the manifest; after its restart it streams the file
// again and the receiver, which kept its blocks, gets the rest.
func TestStreamSenderRestart(t *testing.T) {
	n, a, b := pair(t, func(c *Config) { c.StreamMinSize = 1 })
	const blocks = 8
	data := randBytes(42, blocks*minBlockSize+3)
	cut := cutAtChunk(n, a, b, 4)
	a.put("s.bin", data)
	<-cut
	a.closeEngine()
	a.open()
	a.start()
	since := n.heal(a, b)
	b.waitFile("inbox/alice/s.bin", data)
	a.waitFile("sent/s.bin", data)
	if resent := since(); resent != blocks+1-3 {
		t.Errorf("chunks after restart = %d, want %d", resent, blocks+1-3)
	}
}
