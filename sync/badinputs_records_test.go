package sync

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// row58Records: mallory passes on chat records that are forged (signed
// with her key in carol's name), altered after signing (text, or a number
// that reorders or replays the line under another), replayed, truncated,
// from a removed member, or from nobody bob knows. bob shows none of
// them, counts each that does not verify against mallory, and still takes
// her own honest line and carol's true one.
func row58Records(t *testing.T, v *syncVictim) {
	carol, dave := v.n.nodeNamed(t, "carol"), v.n.nodeNamed(t, "dave")
	before := peerStatus(v.b, v.ev.id).BadData

	wrongKey := carol.line(1, "forged: carol never said this")
	wrongKey.Sign(v.ev.key)
	altered := carol.line(1, "true line")
	altered.Text = "forged: altered after signing"
	renumbered := carol.line(1, "forged: said once, replayed as number 2")
	renumbered.Seq = 2
	revoked := dave.line(1, "forged: from a removed member")
	stranger := v.n.addStranger(t, "forged: from no member")
	for _, c := range []record.Chat{wrongKey, altered, renumbered, revoked, stranger} {
		v.ev.sendTo(v.b, &recordsMsg{Records: []record.Chat{c}})
	}
	truncated := (&recordsMsg{Records: []record.Chat{carol.line(1, "forged: cut short")}}).encode()
	v.ev.SendBytes(t.Context(), v.b.id, truncated[:len(truncated)-10])

	honest := carol.line(1, "carol's true line")
	v.ev.sendTo(v.b, &recordsMsg{Records: []record.Chat{honest, honest}}) // the replay is a duplicate
	v.ev.sendTo(v.b, &recordsMsg{Records: []record.Chat{v.ev.line(1, "mallory's own line")}})
	waitChatHas(t, v.b, "carol: carol's true line", "mallory: mallory's own line")
	waitFor(t, func() bool { return peerStatus(v.b, v.ev.id).BadData-before == 3 })
	log, err := os.ReadFile(v.b.engine().ChatLogPath())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(log, []byte("forged")) || bytes.Count(log, []byte("carol's true line")) != 1 {
		t.Errorf("bob's chat shows a forged or repeated line:\n%s", log)
	}
	v.check(t)
}

// addStranger makes a record signed by a key no member of the net holds.
func (n *fakeNet) addStranger(t *testing.T, text string) record.Chat {
	fn := n.addNode(fmt.Sprintf("stranger-%d", len(text)), nil)
	fn.engine().Close()
	fn.eng = nil
	c := fn.line(1, text)
	n.mu.Lock()
	delete(n.nodes, fn.id)
	n.mu.Unlock()
	return c
}

// waitChatHas polls until fn's chat shows each of lines.
func waitChatHas(t *testing.T, fn *fakeNode, lines ...string) {
	t.Helper()
	waitFor(t, func() bool {
		got := strings.Join(chatLines(t, fn), "\n") + "\n"
		for _, l := range lines {
			if !strings.Contains(got, l+"\n") {
				return false
			}
		}
		return true
	})
}

// row59Manifests: mallory passes on files that are not as their author
// signed them: no signature, her signature in carol's name, carol's with
// the path changed, a removed member's, a streamed one (only an author
// streams); and a receipt she forged in carol's name. bob refuses each
// offer as forged before writing anything, counts each bad signature
// against her, ignores the forged receipt, and still takes carol's file
// through her when it is as carol signed it, and carol's true receipt.
func row59Manifests(t *testing.T, v *syncVictim) {
	carol, dave := v.n.nodeNamed(t, "carol"), v.n.nodeNamed(t, "dave")
	v.folders = append(v.folders, "carol")
	before := peerStatus(v.b, v.ev.id).BadData
	data := []byte("carol's file, passed on by mallory")
	signed := func(author *fakeNode, key *fakeNode, path string) *offerMsg {
		m := offerOf(v.id(), path, data)
		m.Author = author.id
		f := manifestRecord(author.id, m)
		f.Sign(key.key)
		m.Sig = f.Sig
		return m
	}
	unsigned := offerOf(v.id(), "unsigned.txt", data)
	unsigned.Author, unsigned.Sig = carol.id, []byte{}
	altered := signed(carol, carol, "altered.txt")
	altered.Path = "renamed.txt"
	streamed := offerOf(v.id(), "streamed.bin", make([]byte, 3*minBlockSize))
	streamed.Author, streamed.Blocks, streamed.FileHash, streamed.Sig = carol.id, []hash32{}, hash32{}, []byte{}
	for _, m := range []*offerMsg{unsigned, signed(carol, v.ev.fakeNode, "hers.txt"), altered,
		signed(dave, dave, "removed.txt"), streamed} {
		if r, ok := v.offerMsg(t, m, nil).(*rejectMsg); !ok || r.Code != rejectForged {
			t.Errorf("%s: bob answered %+v, want REJECT forged", m.Path, r)
		}
	}
	good := signed(carol, carol, "relayed.txt")
	if r, ok := v.offerMsg(t, good, data).(*ackMsg); !ok {
		t.Fatalf("carol's file as she signed it, through mallory: %+v, want ACK", r)
	}
	v.b.waitFile("inbox/carol/relayed.txt", data)

	v.b.put("mine.txt", []byte("bob's own"))
	id := v.b.recordID(t, "mine.txt")
	forged := record.Receipt{Receiver: carol.id, Author: v.b.id, ID: id}
	forged.Sign(v.ev.key)
	v.ev.sendTo(v.b, &receiptsMsg{Receipts: []record.Receipt{forged}})
	waitFor(t, func() bool { return peerStatus(v.b, v.ev.id).BadData-before == 3 })
	if v.b.delivered(id, carol.id) {
		t.Error("a receipt mallory forged in carol's name marked carol delivered")
	}
	honest := record.Receipt{Receiver: carol.id, Author: v.b.id, ID: id}
	honest.Sign(carol.key)
	v.ev.sendTo(v.b, &receiptsMsg{Receipts: []record.Receipt{honest}})
	waitFor(t, func() bool { return v.b.delivered(id, carol.id) })
	os.Remove(filepath.Join(v.b.root, "outbox", "mine.txt"))
	v.b.engine().OutboxRemoved("mine.txt")
	v.check(t)
}

// nodeNamed is a member of the net with no engine (only its key is
// used); "dave" is made a removed member.
func (n *fakeNet) nodeNamed(t *testing.T, name string) *fakeNode {
	n.mu.Lock()
	for _, fn := range n.nodes {
		if fn.name == name {
			n.mu.Unlock()
			return fn
		}
	}
	n.mu.Unlock()
	fn := n.addNode(name, nil)
	fn.engine().Close()
	fn.eng = nil
	if name == "dave" {
		n.mu.Lock()
		if n.revoked == nil {
			n.revoked = map[mesh.PeerID]bool{}
		}
		n.revoked[fn.id] = true
		n.mu.Unlock()
	}
	return fn
}

// recordID is the transfer ID of fn's outbox file rel, once recorded.
func (fn *fakeNode) recordID(t *testing.T, rel string) transferID {
	var id transferID
	waitFor(t, func() bool {
		rec := fn.engine().out.recordFor(rel)
		if rec != nil {
			id = rec.ID
		}
		return rec != nil
	})
	return id
}

// delivered reports whether fn counts member who delivered with transfer id.
func (fn *fakeNode) delivered(id transferID, who mesh.PeerID) bool {
	o := fn.engine().out
	o.mu.Lock()
	defer o.mu.Unlock()
	rec := o.records[id]
	return rec != nil && rec.Peers[who.String()] != nil && rec.Peers[who.String()].State == StateVerified
}

// row61Private: private lines passed on by mallory that bob cannot or must
// not open, or that were changed after signing.
func row61Private(t *testing.T, v *syncVictim) {
	carol, dave := v.n.nodeNamed(t, "carol"), v.n.nodeNamed(t, "dave")
	before := peerStatus(v.b, v.ev.id).BadData
	// Carol's numbers 2 and 3 (row 58 used 1), mallory's 2 and 3.
	misaddressed := privateLine(t, carol, 2, v.b.id, "forged: sealed to dave, addressed to bob", dave)
	honest := privateLine(t, carol, 3, v.b.id, "carol's private line", v.b)
	redirected := honest
	redirected.To = dave.id // changed after signing
	stolen := privateLine(t, v.ev.fakeNode, 2, v.b.id, "", v.b)
	stolen.Sealed = honest.Sealed // carol's sealed line in mallory's record
	stolen.Sign(v.ev.key)
	clear := privateLine(t, v.ev.fakeNode, 3, v.b.id, "", v.b)
	clear.Text = "forged: private line with text in the clear"
	clear.Sign(v.ev.key)
	for _, c := range []record.Chat{misaddressed, redirected, honest, stolen, clear} {
		v.ev.sendTo(v.b, &recordsMsg{Records: []record.Chat{c}})
	}
	v.ev.sendTo(v.b, &recordsMsg{Records: []record.Chat{v.ev.line(3, "mallory's line after")}})
	waitChatHas(t, v.b, "mallory: mallory's line after")
	waitConversation(t, v.b, "carol", []string{"carol: carol's private line"})
	if got := conversation(t, v.b, "mallory"); got != nil {
		t.Errorf("bob shows %q from mallory, who sent only lines he must not open", got)
	}
	waitFor(t, func() bool { return peerStatus(v.b, v.ev.id).BadData-before == 1 })
	v.check(t)
}

// privateLine is author's private line seq to the member to, its text
// sealed to sealTo's key (the recipient's, when honest) and the author's.
func privateLine(t *testing.T, author *fakeNode, seq uint64, to mesh.PeerID, text string, sealTo *fakeNode) record.Chat {
	t.Helper()
	c := record.Chat{Author: author.id, Seq: seq, Lamport: seq, Time: time.Now(), To: to}
	sealed, err := sealLine(c, text, author.key.Public().(ed25519.PublicKey), sealTo.key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	c.Sealed = sealed
	c.Sign(author.key)
	return c
}

// row62PrivateFiles: private files mallory passes on to bob that he cannot
// or must not open, or carries for another.
func row62PrivateFiles(t *testing.T, v *syncVictim) {
	carol, dave := v.n.nodeNamed(t, "carol"), v.n.nodeNamed(t, "dave")
	secret := []byte("marker-row62 carol's private file for bob")
	// boxed is author's OFFER of a box for to, sealed to sealTo's key, whose
	// header names inside as its author; and the box.
	boxed := func(author, to, sealTo, inside *fakeNode) (*offerMsg, []byte) {
		id := v.id()
		h := boxHeader{Author: inside.id, To: to.id, ID: id, Path: "secret.txt", Mode: 0o600, MTime: 1, Size: uint64(len(secret))}
		var box bytes.Buffer
		if err := sealBox(&box, h, bytes.NewReader(secret), inside.key.Public().(ed25519.PublicKey), sealTo.key.Public().(ed25519.PublicKey)); err != nil {
			t.Fatal(err)
		}
		m := offerOf(id, id.String()+".box", box.Bytes())
		m.Author, m.To = author.id, to.id
		f := manifestRecord(author.id, m)
		f.Sign(author.key)
		m.Sig = f.Sig
		return m, box.Bytes()
	}
	send := func(m *offerMsg, box []byte) {
		t.Helper()
		if r, ok := v.offerMsg(t, m, box).(*ackMsg); !ok {
			t.Fatalf("box %s of %s to %s: bob answered %+v, want ACK (he takes the box, then looks inside)",
				m.ID, m.Author.Short(), m.To.Short(), r)
		}
	}
	send(boxed(carol, v.b, dave, carol))           // addressed to bob, sealed to dave
	send(boxed(v.ev.fakeNode, v.b, v.b, carol))    // carol's box in mallory's record
	toSelf, _ := boxed(carol, carol, carol, carol) // to its own author: dropped at the decoder
	v.ev.sendTo(v.b, toSelf)
	send(boxed(carol, v.ev.fakeNode, v.ev.fakeNode, carol)) // for mallory: bob carries it
	if exists(filepath.Join(v.b.root, "inbox", "carol", "secret.txt")) || exists(filepath.Join(v.b.root, "inbox", "mallory", "secret.txt")) {
		t.Fatal("bob placed a file from a box that was not sealed to him, or not as its record says")
	}
	send(boxed(carol, v.b, v.b, carol))
	v.b.waitFile("inbox/carol/secret.txt", secret)
	if got := carried(t, v.b); len(got) != 1 {
		t.Errorf("bob carries %d boxes, want the one for mallory", len(got))
	}
	v.check(t)
}
