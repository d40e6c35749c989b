package sync

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

// evilPeer is a member with no engine: the test speaks the protocol by hand.
type evilPeer struct {
	*fakeNode
	t       *testing.T
	replies chan any
	mu      sync.Mutex
	offered map[transferID]offerMsg // to sign the DONE of a streamed offer
}

// newEvil connects an evil peer to target. It answers a HELLO with its own,
// speaking this build's sync protocol, so target offers it files.
func newEvil(t *testing.T, n *fakeNet, name string, target *fakeNode) *evilPeer {
	return newEvilSpeaking(t, n, name, target, Version)
}

// newEvilSpeaking is newEvil with the sync protocol version it claims.
func newEvilSpeaking(t *testing.T, n *fakeNet, name string, target *fakeNode, version uint16) *evilPeer {
	fn := n.addNode(name, nil)
	fn.engine().Close()
	fn.mu.Lock()
	fn.eng = nil
	fn.mu.Unlock()
	ev := &evilPeer{fakeNode: fn, t: t, replies: make(chan any, 256), offered: map[transferID]offerMsg{}}
	fn.recv = func(from mesh.PeerID, data []byte) {
		m, err := decodeMessage(data)
		if err != nil {
			return
		}
		if _, ok := m.(*helloMsg); ok {
			fn.SendBytes(t.Context(), from, (&helloMsg{Version: version}).encode())
		}
		ev.replies <- m
	}
	n.connect(fn, target)
	return ev
}

func (ev *evilPeer) sendTo(to *fakeNode, m interface{ encode() []byte }) {
	ev.t.Helper()
	if err := ev.SendBytes(ev.t.Context(), to.id, ev.encode(m)); err != nil {
		ev.t.Fatalf("send: %v", err)
	}
}

// encode encodes m as an honest author would send it: an OFFER without an
// author is mallory's own, signed by her unless streamed; a streamed
// OFFER's DONE gets her signature over the manifest it completes. The
// rows that forge signatures set Author or Sig themselves.
func (ev *evilPeer) encode(m interface{ encode() []byte }) []byte {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	switch m := m.(type) {
	case *offerMsg:
		if m.Author.IsZero() {
			m.Author = ev.id
		}
		if m.Sig == nil && !m.streamed() {
			f := manifestRecord(m.Author, m)
			f.Sign(ev.key)
			m.Sig = f.Sig
		}
		ev.offered[m.ID] = *m
	case *doneMsg:
		if o, ok := ev.offered[m.ID]; ok && m.Sig == nil && len(m.Blocks) > 0 {
			o.FileHash = m.FileHash
			f := manifestRecord(o.Author, &o)
			f.Sign(ev.key)
			m.Sig = f.Sig
		}
	}
	return m.encode()
}

// firstHello returns the first HELLO, skipping CHAT_HAVE.
func (ev *evilPeer) firstHello() (*helloMsg, bool) {
	ev.t.Helper()
	for {
		select {
		case m := <-ev.replies:
			if h, ok := m.(*helloMsg); ok {
				return h, true
			}
		case <-time.After(effectTimeout):
			return nil, false
		}
	}
}

// drain returns what is queued now, but HELLO and the room's messages.
func (ev *evilPeer) drain() []any {
	var got []any
	for {
		select {
		case m := <-ev.replies:
			switch m.(type) {
			case *haveMsg, *recordsMsg, *receiptsMsg, *helloMsg:
			default:
				got = append(got, m)
			}
		default:
			return got
		}
	}
}

// next returns the next reply, skipping HELLO and the room's messages.
func (ev *evilPeer) next() any {
	ev.t.Helper()
	for {
		select {
		case m := <-ev.replies:
			switch m.(type) {
			case *haveMsg, *recordsMsg, *receiptsMsg, *helloMsg:
				continue
			}
			return m
		case <-time.After(5 * time.Second):
			ev.t.Fatalf("no reply")
			return nil
		}
	}
}

// offerOf builds a valid OFFER for data.
func offerOf(id transferID, path string, data []byte) *offerMsg {
	m := &offerMsg{ID: id, Path: path, Size: uint64(len(data)), BlockSize: minBlockSize, Mode: 0o644}
	for i := 0; i < len(data); i += minBlockSize {
		m.Blocks = append(m.Blocks, blockSum(data[i:min(i+minBlockSize, len(data))]))
	}
	if m.Blocks == nil {
		m.Blocks = []hash32{}
	}
	m.FileHash = fileHashOf(m.Size, m.BlockSize, m.Blocks)
	return m
}

// noFileOutside checks that nothing but inbox/<folder>/ holds files.
func noFileOutside(t *testing.T, fn *fakeNode, folder string) {
	t.Helper()
	filepath.Walk(fn.root, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(fn.root, p)
		if dir := filepath.Join("inbox", folder); filepath.Dir(rel) != dir && !isUnder(rel, dir) && !isUnder(rel, filepath.Join("inbox", partialsName)) {
			t.Errorf("file outside inbox/%s: %s", folder, rel)
		}
		return nil
	})
}

func isUnder(rel, dir string) bool {
	r, err := filepath.Rel(dir, rel)
	return err == nil && r != ".." && !filepath.IsAbs(r) && (len(r) < 3 || r[:3] != "../")
}

func TestEvilOffers(t *testing.T) {
	n := newFakeNet(t)
	b := n.addNode("bob", func(c *Config) { c.MaxFileSize = 1 << 20 })
	b.start()
	ev := newEvil(t, n, "mallory", b)
	tests := []struct {
		name string
		path string
		size int
		want rejectCode
	}{
		{"traversal", "../../etc/passwd", 10, rejectName},
		{"absolute", "/etc/passwd", 10, rejectName},
		{"backslash", "a\\b", 10, rejectName},
		{"device", "con.txt", 10, rejectName},
		{"escape", "a\x1b[2Jb", 10, rejectName},
		{"hidden partials", ".meshfs-partials/x", 10, rejectName},
		{"too big", "big.bin", 2 << 20, rejectTooBig},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := transferID{byte(i + 1)}
			m := &offerMsg{ID: id, Path: tc.path, Size: uint64(tc.size), BlockSize: maxBlockSize, Blocks: []hash32{{}}}
			ev.sendTo(b, m)
			r, ok := ev.next().(*rejectMsg)
			if !ok || r.ID != id || r.Code != tc.want {
				t.Fatalf("reply = %+v, want REJECT %v", r, tc.want)
			}
		})
	}
	noFileOutside(t, b, "mallory")
}

func TestEvilTransferRules(t *testing.T) {
	n := newFakeNet(t)
	b := n.addNode("bob", nil)
	b.start()
	ev := newEvil(t, n, "mallory", b)
	data := randBytes(20, minBlockSize+10)

	// Wrong whole-file hash: blocks verify, the file does not => REJECT, no file.
	bad := offerOf(transferID{1}, "bad.bin", data)
	bad.FileHash = hash32{0xde, 0xad}
	ev.sendTo(b, bad)
	if a, ok := ev.next().(*acceptMsg); !ok || a.Have.count() != 0 {
		t.Fatalf("reply = %+v, want empty ACCEPT", a)
	}
	sendAll(ev, b, bad.ID, data)
	if r, ok := ev.next().(*rejectMsg); !ok || r.Code != rejectIO {
		t.Fatalf("reply = %+v, want REJECT io", r)
	}
	if exists(filepath.Join(b.root, "inbox", "mallory", "bad.bin")) {
		t.Errorf("file with wrong hash was put in place")
	}

	// A good transfer, then its replay: ACK at once, no second copy.
	good := offerOf(transferID{2}, "good.bin", data)
	ev.sendTo(b, good)
	ev.next()
	// Junk first: out-of-range index, wrong length, unknown id.
	ev.sendTo(b, &chunkMsg{ID: good.ID, Index: 9, Data: data[:10]})
	ev.sendTo(b, &chunkMsg{ID: good.ID, Index: 0, Data: data[:10]})
	ev.sendTo(b, &chunkMsg{ID: transferID{77}, Index: 0, Data: data[:minBlockSize]})
	sendAll(ev, b, good.ID, data)
	if _, ok := ev.next().(*ackMsg); !ok {
		t.Fatalf("want ACK")
	}
	b.waitFile("inbox/mallory/good.bin", data)
	ev.sendTo(b, good)
	if _, ok := ev.next().(*ackMsg); !ok {
		t.Fatalf("replayed OFFER: want ACK")
	}
	if exists(filepath.Join(b.root, "inbox", "mallory", "good (1).bin")) {
		t.Errorf("replay made a second copy")
	}
	noFileOutside(t, b, "mallory")
}

// sendAll sends every block of data, then DONE.
func sendAll(ev *evilPeer, to *fakeNode, id transferID, data []byte) {
	for i := 0; i*minBlockSize < len(data); i++ {
		ev.sendTo(to, &chunkMsg{ID: id, Index: uint32(i), Data: data[i*minBlockSize : min((i+1)*minBlockSize, len(data))]})
	}
	ev.sendTo(to, &doneMsg{ID: id})
}

// TestEvilBusy: more concurrent OFFERs than MaxInboundPerPeer => BUSY.
func TestEvilBusy(t *testing.T) {
	n := newFakeNet(t)
	b := n.addNode("bob", func(c *Config) { c.MaxInboundPerPeer = 2 })
	b.start()
	ev := newEvil(t, n, "mallory", b)
	data := randBytes(21, 100)
	for i := range 3 {
		ev.sendTo(b, offerOf(transferID{byte(i + 1)}, "f"+string(rune('a'+i)), data))
	}
	var busy int
	for range 3 {
		if r, ok := ev.next().(*rejectMsg); ok && r.Code == rejectBusy {
			busy++
		}
	}
	if busy != 1 {
		t.Errorf("BUSY replies = %d, want 1", busy)
	}
}

// TestEvilCannotFeedOthers: chunks for another peer's transfer ID are
// ignored; the real sender's file still arrives intact.
func TestEvilCannotFeedOthers(t *testing.T) {
	n := newFakeNet(t)
	a, b := n.addNode("alice", nil), n.addNode("bob", nil)
	b.start()
	ev := newEvil(t, n, "mallory", b)
	a.start()
	data := randBytes(22, 3*minBlockSize)
	n.mu.Lock()
	n.mutate = func(from, to mesh.PeerID, d []byte) []byte {
		if from == a.id && d[0] == byte(kindOffer) {
			var id transferID
			copy(id[:], d[1:17])
			// mallory learns the id and tries to feed garbage first
			junk := make([]byte, minBlockSize)
			go ev.SendBulk(t.Context(), b.id, (&chunkMsg{ID: id, Index: 0, Data: junk}).encode())
		}
		return d
	}
	n.mu.Unlock()
	n.connect(a, b)
	a.put("mine.bin", data)
	b.waitFile("inbox/alice/mine.bin", data)
}

// TestRandomChunkOrder: seeded random orders with duplicates and corrupted
// chunks; the file that appears is always byte-identical, and the receiver
// asks for exactly what it lacks.
func TestRandomChunkOrder(t *testing.T) {
	n := newFakeNet(t)
	b := n.addNode("bob", nil)
	b.start()
	ev := newEvil(t, n, "mallory", b)
	for seed := range 5 {
		r := rand.New(rand.NewPCG(uint64(seed), 9))
		data := randBytes(uint64(50+seed), 6*minBlockSize+r.IntN(minBlockSize))
		rel := fmt.Sprintf("rand%d.bin", seed)
		m := offerOf(transferID{byte(100 + seed)}, rel, data)
		ev.sendTo(b, m)
		have := ev.next().(*acceptMsg).Have
		for round := 0; ; round++ {
			if round > maxResendRounds {
				t.Fatalf("seed %d: not done after %d rounds", seed, round)
			}
			for _, i := range r.Perm(len(m.Blocks)) {
				if have.has(i) {
					continue
				}
				block := data[i*minBlockSize : min((i+1)*minBlockSize, len(data))]
				switch r.IntN(4) {
				case 0: // duplicate
					ev.sendTo(b, &chunkMsg{ID: m.ID, Index: uint32(i), Data: block})
				case 1: // corrupted copy first, then maybe the real one
					bad := slices.Clone(block)
					bad[0] ^= 1
					ev.sendTo(b, &chunkMsg{ID: m.ID, Index: uint32(i), Data: bad})
					if r.IntN(2) == 0 {
						continue
					}
				}
				ev.sendTo(b, &chunkMsg{ID: m.ID, Index: uint32(i), Data: block})
			}
			ev.sendTo(b, &doneMsg{ID: m.ID})
			reply := ev.next()
			if _, ok := reply.(*ackMsg); ok {
				break
			}
			if final := filepath.Join(b.root, "inbox", "mallory", rel); exists(final) {
				t.Fatalf("seed %d: final file present before ACK", seed)
			}
			have = reply.(*acceptMsg).Have
		}
		b.waitFile("inbox/mallory/"+rel, data)
	}
}
