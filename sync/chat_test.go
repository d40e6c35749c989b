package sync

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

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
	// A raw peer sending escapes and a seq-0 message twice.
	evil := n.addNode("mallory\x1b[2J", nil)
	evil.eng.Close()
	evil.eng = nil
	b.engine().HandleEvent(mesh.ChatReceived{From: mesh.PeerInfo{ID: evil.id, Name: evil.name}, Chat: mesh.Chat{Seq: 0, Text: "\x1b]0;title\x07hi"}})
	b.engine().HandleEvent(mesh.ChatReceived{From: mesh.PeerInfo{ID: evil.id, Name: evil.name}, Chat: mesh.Chat{Seq: 0, Text: "hi"}})
	b.engine().HandleEvent(mesh.ChatReceived{From: mesh.PeerInfo{ID: evil.id, Name: evil.name}, Chat: mesh.Chat{Seq: 5, Text: "five"}})
	b.engine().HandleEvent(mesh.ChatReceived{From: mesh.PeerInfo{ID: evil.id, Name: evil.name}, Chat: mesh.Chat{Seq: 5, Text: "five again"}})
	waitChat(t, b, []string{"alice: red evil", "mallory: hi", "mallory: hi", "mallory: five"})
}
