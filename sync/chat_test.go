package sync

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/meshfs/meshfs/record"

	"github.com/meshfs/meshfs/chat"
	"github.com/meshfs/meshfs/internal/testutil"
	"github.com/meshfs/meshfs/mesh"
)

var chatLine = regexp.MustCompile(`^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] (.*)$`)

// chatLines returns the message lines ("name: text") of a node's log.
func chatLines(t *testing.T, fn *fakeNode) []string {
	t.Helper()
	data, err := os.ReadFile(fn.engine().ChatLogPath())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l == "" {
			continue
		}
		m := chatLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("chat log line %q has the wrong form", l)
		}
		if !strings.HasPrefix(m[1], "* ") {
			out = append(out, m[1])
		}
	}
	return out
}

// waitChat polls until a node's message lines equal want.
func waitChat(t *testing.T, fn *fakeNode, want []string) {
	t.Helper()
	waitChatBy(t, fn, want, slices.Equal[[]string])
}

// waitChatPerSender polls until a node's message lines hold want with each
// sender's lines in want's order; senders may interleave differently.
func waitChatPerSender(t *testing.T, fn *fakeNode, want []string) {
	t.Helper()
	waitChatBy(t, fn, want, func(got, want []string) bool {
		if len(got) != len(want) {
			return false
		}
		for _, name := range []string{"alice: ", "bob: "} {
			keep := func(l string) bool { return !strings.HasPrefix(l, name) }
			if !slices.Equal(slices.DeleteFunc(slices.Clone(got), keep), slices.DeleteFunc(slices.Clone(want), keep)) {
				return false
			}
		}
		return true
	})
}

func waitChatBy(t *testing.T, fn *fakeNode, want []string, same func(got, want []string) bool) {
	t.Helper()
	var got []string
	err := testutil.WaitFor(effectTimeout, func() error {
		got = chatLines(t, fn)
		if !same(got, want) {
			return errors.New("log differs")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s chat log = %q, want %q", fn.name, got, want)
	}
}

func say(t *testing.T, fn *fakeNode, text string) {
	t.Helper()
	if err := fn.engine().Say(text); err != nil {
		t.Fatalf("Say(%q) = %v", text, err)
	}
}

func TestChatOrder(t *testing.T) {
	_, a, b := pair(t, nil)
	var want []string
	for i := range 30 {
		say(t, a, fmt.Sprintf("line %d", i))
		want = append(want, fmt.Sprintf("alice: line %d", i))
	}
	waitChat(t, b, want)
	waitChat(t, a, want)
}

func TestChatCatchUpNoDuplicates(t *testing.T) {
	n, a, b := pair(t, nil)
	say(t, a, "before")
	waitChat(t, b, []string{"alice: before"})
	n.cut(a, b)
	say(t, a, "while cut 1")
	say(t, a, "while cut 2")
	say(t, b, "bob while cut")
	n.connect(a, b)
	say(t, a, "after")
	waitChat(t, b, []string{"alice: before", "bob: bob while cut", "alice: while cut 1", "alice: while cut 2", "alice: after"})
	waitChatPerSender(t, a, []string{"alice: before", "alice: while cut 1", "alice: while cut 2", "bob: bob while cut", "alice: after"})
	// A second reconnect must not replay anything.
	n.cut(a, b)
	n.connect(a, b)
	say(t, a, "last")
	waitChat(t, b, []string{"alice: before", "bob: bob while cut", "alice: while cut 1", "alice: while cut 2", "alice: after", "alice: last"})
}

func TestChatSurvivesRestart(t *testing.T) {
	n, a, b := pair(t, nil)
	say(t, a, "one")
	waitChat(t, b, []string{"alice: one"})
	say(t, b, "two")
	waitChat(t, a, []string{"alice: one", "bob: two"})
	waitChat(t, b, []string{"alice: one", "bob: two"})
	n.cut(a, b)
	a.closeEngine()
	a.open()
	a.start()
	b.closeEngine()
	b.open()
	b.start()
	waitChat(t, a, []string{"alice: one", "bob: two"})
	n.connect(a, b)
	say(t, a, "three") // seq continues after restart: bob must not drop it
	waitChat(t, b, []string{"alice: one", "bob: two", "alice: three"})
	waitChat(t, a, []string{"alice: one", "bob: two", "alice: three"})
}

func TestChatSanitises(t *testing.T) {
	n, a, b := pair(t, nil)
	say(t, a, "\x1b[31mred\x1b[0m \u202eevil\n")
	say(t, a, "\x1b[0m") // empty after stripping: ignored
	if err := a.engine().Say(strings.Repeat("x", chat.MaxBytes+1)); !errors.Is(err, chat.ErrTooLong) {
		t.Errorf("Say(4 KiB+1) = %v, want chat.ErrTooLong", err)
	}
	if err := a.engine().Say("bad \xff"); !errors.Is(err, chat.ErrBadUTF8) {
		t.Errorf("Say(invalid utf-8) = %v, want chat.ErrBadUTF8", err)
	}
	waitChat(t, b, []string{"alice: red evil"})
	// mallory, a member with no engine, sends records by hand.
	evil := n.addNode("mallory\x1b[2J", nil)
	evil.eng.Close()
	evil.eng = nil
	send := func(data []byte) { b.engine().HandleEvent(mesh.BytesReceived{From: evil.id, Data: data}) }
	send((&recordsMsg{Records: []record.Chat{evil.line(1, "hi")}}).encode())
	forged := evil.line(2, "two")
	forged.Text = "altered after signing"
	send((&recordsMsg{Records: []record.Chat{forged}}).encode())
	escaped := evil.line(2, "\x1b]0;title\x07two")
	send((&recordsMsg{Records: []record.Chat{escaped}}).encode()) // refused whole: no honest author signs escapes
	send((&recordsMsg{Records: []record.Chat{evil.line(2, "two"), evil.line(2, "two again")}}).encode())
	waitChat(t, b, []string{"alice: red evil", "mallory: hi", "mallory: two"})
	waitFor(t, func() bool { // the forged record counted against mallory
		return peerStatus(b, evil.id).BadData == 1
	})
}

// TestChatRelays: alice and carol are not connected; bob between them
// passes each one's lines to the other, in order, once each.
func TestChatRelays(t *testing.T) {
	n := newFakeNet(t)
	a, b, c := n.addNode("alice", nil), n.addNode("bob", nil), n.addNode("carol", nil)
	for _, fn := range []*fakeNode{a, b, c} {
		fn.start()
	}
	n.connect(a, b)
	n.connect(b, c)
	var want []string
	for i := range 5 {
		say(t, a, fmt.Sprintf("a%d", i))
		say(t, c, fmt.Sprintf("c%d", i))
		want = append(want, fmt.Sprintf("alice: a%d", i), fmt.Sprintf("carol: c%d", i))
	}
	for _, fn := range []*fakeNode{a, b, c} {
		waitChatPerSender(t, fn, want)
	}
}

// TestChatCatchUpWhileAuthorAway: carol was away while alice spoke; alice
// is gone when carol comes back, and bob gives her alice's lines.
func TestChatCatchUpWhileAuthorAway(t *testing.T) {
	n := newFakeNet(t)
	a, b, c := n.addNode("alice", nil), n.addNode("bob", nil), n.addNode("carol", nil)
	for _, fn := range []*fakeNode{a, b, c} {
		fn.start()
	}
	n.connect(a, b)
	want := []string{"alice: one", "alice: two", "alice: three"}
	for _, l := range []string{"one", "two", "three"} {
		say(t, a, l)
	}
	waitChat(t, b, want)
	n.cut(a, b)
	n.connect(b, c)
	waitChat(t, c, want)
	say(t, c, "thanks")
	waitChat(t, b, append(want, "carol: thanks"))
	n.connect(a, b) // alice back: she gets carol's line, and nothing twice
	waitChat(t, a, append(want, "carol: thanks"))
}

// TestChatLiarFoundOut: mallory passes on bob's lines altered; alice has
// them from bob too, keeps only the true ones, and names mallory.
func TestChatLiarFoundOut(t *testing.T) {
	n := newFakeNet(t)
	a, b, m := n.addNode("alice", nil), n.addNode("bob", nil), n.addNode("mallory", nil)
	n.mutate = func(from, to mesh.PeerID, d []byte) []byte {
		msg, err := decodeMessage(d)
		recs, ok := msg.(*recordsMsg)
		if err != nil || !ok || from != m.id {
			return d
		}
		for i := range recs.Records {
			if recs.Records[i].Author != m.id {
				recs.Records[i].Text += " (altered)"
			}
		}
		return recs.encode()
	}
	for _, fn := range []*fakeNode{a, b, m} {
		fn.start()
	}
	n.connect(b, m)
	say(t, b, "one")
	waitChat(t, m, []string{"bob: one"})
	n.connect(a, m) // mallory is alice's only way to bob's line: an altered one
	waitFor(t, func() bool { return peerStatus(a, m.id).BadData >= 1 })
	n.connect(a, b)
	say(t, b, "two")
	waitChat(t, a, []string{"bob: one", "bob: two"})
	if got := peerStatus(a, b.id).BadData; got != 0 {
		t.Errorf("bob, who passed nothing altered, has %d bad records", got)
	}
}

// peerStatus is fn's status of member id.
func peerStatus(fn *fakeNode, id mesh.PeerID) PeerStatus {
	for _, p := range fn.engine().Status().Peers {
		if p.ID == id.String() {
			return p
		}
	}
	return PeerStatus{}
}
