package sync

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// sayTo sends a private line from fn to the member whose conversation is
// called name.
func sayTo(t *testing.T, fn *fakeNode, name, text string) {
	t.Helper()
	if err := fn.engine().SayTo(name, text); err != nil {
		t.Fatalf("%s: SayTo(%q, %q) = %v", fn.name, name, text, err)
	}
}

// conversation returns the message lines ("name: text") of fn's
// conversation with the member called name.
func conversation(t *testing.T, fn *fakeNode, name string) []string {
	t.Helper()
	for _, c := range fn.engine().Conversations() {
		if c.Name != name {
			continue
		}
		data, err := os.ReadFile(c.Log)
		if errors.Is(err, iofs.ErrNotExist) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 { // complete lines only: it may be being written
			data = data[:i+1]
		} else {
			return nil
		}
		for _, l := range splitLines(string(data)) {
			m := chatLine.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("conversation line %q has the wrong form", l)
			}
			out = append(out, m[1])
		}
		return out
	}
	t.Fatalf("%s has no conversation called %q", fn.name, name)
	return nil
}

// waitConversation polls until fn's conversation with name equals want.
func waitConversation(t *testing.T, fn *fakeNode, name string, want []string) {
	t.Helper()
	var got []string
	err := testutil.WaitFor(effectTimeout, func() error {
		if got = conversation(t, fn, name); !slices.Equal(got, want) {
			return errors.New("conversation differs")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: conversation with %s = %q, want %q", fn.name, name, got, want)
	}
}

// holdsMarker reports the first file under dirs whose bytes contain marker.
func holdsMarker(t *testing.T, marker string, dirs ...string) string {
	t.Helper()
	for _, dir := range dirs {
		var found string
		err := filepath.WalkDir(dir, func(p string, d iofs.DirEntry, err error) error {
			if err != nil || d.IsDir() || found != "" {
				return err
			}
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(marker)) {
				found = p
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if found != "" {
			return found
		}
	}
	return ""
}

// TestPrivateLines: alice and bob talk privately with carol connected to
// both; each sees the conversation in order, carol stores the lines (she
// holds every record) but nothing of them shows or lies in her folders in
// the clear, and the room's log shows none of it anywhere.
func TestPrivateLines(t *testing.T) {
	n, a, b, c := trio(t)
	n.connect(a, b)
	n.connect(b, c)
	n.connect(a, c)
	const marker = "marker-7f3a9c"
	say(t, a, "hello room")
	sayTo(t, a, "bob", "psst "+marker)
	waitConversation(t, b, "alice", []string{"alice: psst " + marker}) // each shows lines as they come
	sayTo(t, b, "alice", "got it")
	waitConversation(t, a, "bob", []string{"alice: psst " + marker, "bob: got it"})
	sayTo(t, a, "bob", "good")
	want := []string{"alice: psst " + marker, "bob: got it", "alice: good"}
	waitConversation(t, b, "alice", want)
	waitConversation(t, a, "bob", want)
	waitFor(t, func() bool { return c.engine().chat.Vector()[a.id] == 3 && c.engine().chat.Vector()[b.id] == 1 })
	for _, fn := range []*fakeNode{a, b, c} {
		waitChat(t, fn, []string{"alice: hello room"})
	}
	if got := conversation(t, c, "alice"); got != nil {
		t.Errorf("carol's conversation with alice = %q, want none", got)
	}
	if p := holdsMarker(t, marker, c.root, c.st); p != "" {
		t.Errorf("carol holds the private text in the clear in %s", p)
	}
}

// TestPrivateLineThroughRelay: bob is away when alice writes to him, alice
// leaves, and carol, who holds the sealed line, gives it to bob.
func TestPrivateLineThroughRelay(t *testing.T) {
	n, a, b, c := trio(t)
	n.connect(a, c)
	sayTo(t, a, "bob", "for bob only")
	waitFor(t, func() bool { return c.engine().chat.Vector()[a.id] == 1 })
	n.cut(a, c)
	n.connect(b, c)
	waitConversation(t, b, "alice", []string{"alice: for bob only"})
	sayTo(t, b, "alice", "thanks")
	n.connect(a, c)
	waitConversation(t, a, "bob", []string{"alice: for bob only", "bob: thanks"})
}

// TestPrivateLineSurvivesRestart: the conversation is rebuilt from the
// store, the own lines included, after the engine restarts.
func TestPrivateLineSurvivesRestart(t *testing.T) {
	n, a, b := pair(t, nil)
	sayTo(t, a, "bob", "one")
	waitConversation(t, b, "alice", []string{"alice: one"})
	sayTo(t, b, "alice", "two")
	want := []string{"alice: one", "bob: two"}
	waitConversation(t, a, "bob", want)
	log := a.engine().Conversations()[0].Log
	if err := os.WriteFile(log, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n.cut(a, b)
	a.closeEngine()
	a.open()
	a.start()
	waitConversation(t, a, "bob", want)
	n.connect(a, b)
	sayTo(t, a, "bob", "three")
	waitConversation(t, b, "alice", append(want, "alice: three"))
}

// TestSayToRefuses: a name that is no member's, text the room would refuse
// too, and nothing staged for them.
func TestSayToRefuses(t *testing.T) {
	_, a, _ := pair(t, nil)
	err := a.engine().SayTo("nobody", "hi")
	if !errors.Is(err, ErrNotMember) || !errors.Is(err, iofs.ErrNotExist) {
		t.Errorf("SayTo(nobody) = %v, want ErrNotMember and fs.ErrNotExist", err)
	}
	if err := a.engine().SayTo("bob", "bad \xff"); err == nil {
		t.Error("SayTo(invalid utf-8) = nil")
	}
	if v := a.engine().chat.Vector()[a.id]; v != 0 {
		t.Errorf("refused lines took %d numbers", v)
	}
}

// TestPrivateLineMisaddressed: mallory (a member) sends bob records he
// cannot or must not open: a line sealed to carol but addressed to bob, and
// alice's sealed line to bob copied into mallory's own record. Bob keeps
// both numbers (so mallory's later lines still come) but shows neither.
func TestPrivateLineMisaddressed(t *testing.T) {
	n, a, b, c := trio(t)
	evil := n.addNode("mallory", nil)
	evil.eng.Close()
	evil.eng = nil
	n.connect(a, c)
	sayTo(t, a, "bob", "from alice")
	var stolen record.Chat
	waitFor(t, func() bool {
		recs, err := c.engine().chat.After(a.id, 0, 1)
		if err == nil && len(recs) == 1 {
			stolen = recs[0]
		}
		return err == nil && len(recs) == 1
	})
	private := func(seq uint64, to mesh.PeerID, sealed []byte) record.Chat {
		m := record.Chat{Author: evil.id, Seq: seq, Lamport: seq, Time: time.Now(), To: to, Sealed: sealed}
		m.Sign(evil.key)
		return m
	}
	toCarol, err := sealLine(record.Chat{Author: evil.id, To: c.id, Seq: 1}, "for carol",
		evil.key.Public().(ed25519.PublicKey), c.key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	send := func(m record.Chat) {
		b.engine().HandleEvent(mesh.BytesReceived{From: evil.id, Data: (&recordsMsg{Records: []record.Chat{m}}).encode()})
	}
	send(private(1, b.id, toCarol))
	send(private(2, b.id, stolen.Sealed))
	send(evil.line(3, "in the room"))
	waitChat(t, b, []string{"mallory: in the room"})
	if got := conversation(t, b, "mallory"); got != nil {
		t.Errorf("bob shows %q from mallory; he could not or must not open them", got)
	}
	if got := conversation(t, b, "alice"); got != nil && slices.ContainsFunc(got, func(l string) bool { return strings.Contains(l, "from alice") }) {
		t.Errorf("bob shows alice's line as %q", got)
	}
}
