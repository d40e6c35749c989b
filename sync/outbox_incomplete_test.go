//go:build linux || darwin

package sync

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/meshfs/meshfs/internal/present"
	"golang.org/x/sys/unix"
)

// warnings records the messages of Warn records, passing everything on.
type warnings struct {
	slog.Handler
	mu   *sync.Mutex
	msgs *[]string
}

func (w warnings) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		w.mu.Lock()
		*w.msgs = append(*w.msgs, r.Message)
		w.mu.Unlock()
	}
	return w.Handler.Handle(ctx, r)
}

func (w warnings) WithAttrs(as []slog.Attr) slog.Handler {
	return warnings{w.Handler.WithAttrs(as), w.mu, w.msgs}
}

func (w warnings) WithGroup(g string) slog.Handler {
	return warnings{w.Handler.WithGroup(g), w.mu, w.msgs}
}

// TestOutboxIncompleteSkipped: a file the FUSE outbox marked as open for
// writing when the node stopped is not sent at startup, with a warning in
// words; once a writer completes it (mark cleared) it is sent.
func TestOutboxIncompleteSkipped(t *testing.T) {
	n := newFakeNet(t)
	var mu sync.Mutex
	var msgs []string
	a := n.addNode("alice", func(c *Config) { c.Logger = slog.New(warnings{c.Logger.Handler(), &mu, &msgs}) })
	b := n.addNode("bob", nil)
	cut := filepath.Join(a.root, "outbox", "cut.bin")
	if err := os.WriteFile(cut, []byte("the first half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(cut, xattrIncomplete, []byte("1"), 0); err != nil {
		t.Skipf("no user xattrs on the test filesystem: %v", err)
	}
	whole := randBytes(40, 1000)
	if err := os.WriteFile(filepath.Join(a.root, "outbox", "whole.txt"), whole, 0o644); err != nil {
		t.Fatal(err)
	}
	a.start()
	b.start()
	n.connect(a, b)
	b.waitFile("inbox/alice/whole.txt", whole)
	a.waitGone("outbox/whole.txt")
	if _, queued := a.engine().Delivery("cut.bin"); queued {
		t.Errorf("cut.bin was queued")
	}
	if exists(filepath.Join(b.root, "inbox", "alice", "cut.bin")) {
		t.Errorf("cut.bin was delivered")
	}
	waitFor(t, func() bool {
		return strings.Contains(a.engine().UnsentReason("cut.bin"), "still being written when meshfs stopped; copy it again")
	})
	mu.Lock()
	warned := slices.Contains(msgs, "outbox file not sent")
	mu.Unlock()
	if !warned {
		t.Errorf("no warning in the log for cut.bin")
	}

	// Copied again: the FUSE layer clears the mark, then reports the file.
	full := []byte("the first half and the second half")
	if err := os.WriteFile(cut, full, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Removexattr(cut, xattrIncomplete); err != nil {
		t.Fatal(err)
	}
	a.engine().OutboxClosed("cut.bin")
	b.waitFile("inbox/alice/cut.bin", full)
}

// TestOutboxIncompleteCancelsOldVersion: a file queued, then reopened for
// writing and cut short by a crash, is not sent in either version.
func TestOutboxIncompleteCancelsOldVersion(t *testing.T) {
	n := newFakeNet(t)
	a, b := n.addNode("alice", nil), n.addNode("bob", nil)
	a.start()
	a.put("v.txt", []byte("version one"))
	waitFor(t, func() bool { _, q := a.engine().Delivery("v.txt"); return q })
	a.closeEngine()
	p := filepath.Join(a.root, "outbox", "v.txt")
	if err := os.WriteFile(p, []byte("version two, cut sh"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(p, xattrIncomplete, []byte("1"), 0); err != nil {
		t.Skipf("no user xattrs on the test filesystem: %v", err)
	}
	a.open()
	a.start()
	waitFor(t, func() bool { _, q := a.engine().Delivery("v.txt"); return !q })
	b.start()
	n.connect(a, b)
	marker := randBytes(41, 10)
	a.put("marker.txt", marker) // sent after v.txt would have been
	b.waitFile("inbox/alice/marker.txt", marker)
	if exists(filepath.Join(b.root, "inbox", "alice", "v.txt")) {
		t.Errorf("a version of the cut-short file was delivered")
	}
}

// TestDeliveryStates: the per-member text behind the user.meshfs.* xattrs.
func TestDeliveryStates(t *testing.T) {
	owner := &peerConn{}
	tests := []struct {
		name string
		d    delivery
		size int64
		want string
	}{
		{"queued", delivery{State: StateQueued}, 100, "queued"},
		{"offered", delivery{State: StateQueued, owner: owner, phase: PhaseOffered}, 100, "offered"},
		{"sending", delivery{State: StateQueued, owner: owner, phase: PhaseSending, sent: 43}, 100, "sending 43%"},
		{"all sent, not verified", delivery{State: StateQueued, owner: owner, phase: PhaseSending, sent: 100}, 100, "sending 99%"},
		{"empty file", delivery{State: StateQueued, owner: owner, phase: PhaseSending}, 0, "sending 100%"},
		{"verifying", delivery{State: StateQueued, owner: owner, phase: PhaseVerifying}, 100, "verifying"},
		{"verified", delivery{State: StateVerified}, 100, "verified"},
		{"refused, retried", delivery{State: StateRefused, Reason: "no space left on bob's disk"}, 100, "refused: no space left on bob's disk"},
		{"refused for good", delivery{State: StateRefused, Final: true, Reason: "file too big"}, 100, "refused: file too big (until the file changes)"},
		{"escape in reason", delivery{State: StateRefused, Reason: "x\x1b[2Jy"}, 100, "refused: xy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := deliveryText(&tc.d, tc.size); got != tc.want {
				t.Errorf("deliveryText = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDeliveryByMember: each member's state under its display name, a
// waiting member queued, and nothing once the file went to sent/.
func TestDeliveryByMember(t *testing.T) {
	n := newFakeNet(t)
	a, b, c := n.addNode("alice", nil), n.addNode("bob", nil), n.addNode("state", nil)
	a.start()
	b.start()
	c.start()
	n.connect(a, b)
	data := randBytes(42, 3*minBlockSize)
	a.put("f.bin", data)
	b.waitFile("inbox/alice/f.bin", data)
	var got map[string]string
	waitFor(t, func() bool {
		got, _ = a.engine().Delivery("f.bin")
		return got["bob"] == "verified"
	})
	if len(got) != 2 || got["state-"+present.ShortID(c.id.String())] != "queued" {
		t.Errorf("Delivery = %v, want bob verified and the member named state queued under a suffixed key", got)
	}
	n.connect(a, c)
	c.waitFile("inbox/alice/f.bin", data)
	a.waitGone("outbox/f.bin")
	if m, queued := a.engine().Delivery("f.bin"); queued {
		t.Errorf("Delivery after sent = %v, true", m)
	}
}
