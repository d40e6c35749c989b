package chat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshfs/meshfs/mesh"
)

func TestSeenSeqs(t *testing.T) {
	s := &seenSeqs{holes: map[uint64]bool{}}
	steps := []struct {
		seq  uint64
		want bool
		cont uint64
	}{
		{1, true, 1}, {1, false, 1}, {3, true, 1}, {2, true, 3}, {2, false, 3}, {0, true, 3}, {0, true, 3}, {10, true, 3},
	}
	for _, st := range steps {
		if got := s.add(st.seq, 100); got != st.want {
			t.Errorf("add(%d) = %v, want %v", st.seq, got, st.want)
		}
		if got := s.contiguous(); got != st.cont {
			t.Errorf("after add(%d): contiguous() = %d, want %d", st.seq, got, st.cont)
		}
	}
}

// TestStoreSurvivesReopen: own lines and what was received are remembered
// across a restart, so sequence numbers go on and duplicates stay out.
func TestStoreSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	peer := mesh.PeerIDFromKey([]byte("bob's key"))
	s.SetSelf(mesh.PeerIDFromKey([]byte("alice's key")), "alice")
	if _, ok, err := s.AppendOwn("one"); !ok || err != nil {
		t.Fatalf("AppendOwn = %v, %v", ok, err)
	}
	if err := s.Receive(peer, "bob", mesh.Chat{Seq: 1, Text: "hi \x1b[31mthere"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, _, err := s.AppendOwn("two")
	if err != nil || m.Seq != 2 {
		t.Fatalf("second own line: seq %d, err %v; want seq 2", m.Seq, err)
	}
	if err := s.Receive(peer, "bob", mesh.Chat{Seq: 1, Text: "replayed"}); err != nil {
		t.Fatal(err)
	}
	if got := s.HaveFrom(peer); got != 1 {
		t.Errorf("HaveFrom(bob) = %d, want 1", got)
	}
	log, err := os.ReadFile(filepath.Join(dir, "chat.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(log), "\n"); n != 3 || !strings.Contains(string(log), "bob: hi there") || strings.Contains(string(log), "replayed") {
		t.Errorf("log has %d lines:\n%s\nwant one, bob's sanitised line, two; no replay", n, log)
	}
}

func TestAppendOwnRejects(t *testing.T) {
	s, err := Open(t.TempDir(), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.AppendOwn(strings.Repeat("x", MaxBytes+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("AppendOwn(too long) = %v, want ErrTooLong", err)
	}
	if _, _, err := s.AppendOwn("bad \xff"); !errors.Is(err, ErrBadUTF8) {
		t.Errorf("AppendOwn(invalid utf-8) = %v, want ErrBadUTF8", err)
	}
	if _, ok, err := s.AppendOwn("\x1b[2J\x07"); ok || err != nil {
		t.Errorf("AppendOwn(only escapes) = %v, %v; want not stored, no error", ok, err)
	}
}

// TestCleanCloseSkipsNothing: after a clean Close the next line takes the
// next number; only a crash skips what was reserved.
func TestCleanCloseSkipsNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"one", "two", "three"} {
		if _, _, err := s.AppendOwn(text); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m, _, err := s.AppendOwn("four"); err != nil || m.Seq != 4 {
		t.Errorf("AppendOwn after a clean restart: seq %d, %v; want 4", m.Seq, err)
	}
}

// TestSkipFillsHole: a skipped number from a member (empty text) fills the
// hole it left, so catch-up stops asking for it, and shows nothing.
func TestSkipFillsHole(t *testing.T) {
	s, err := Open(t.TempDir(), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	peer := mesh.PeerIDFromKey([]byte("bob's key"))
	for _, m := range []mesh.Chat{{Seq: 1, Text: "a"}, {Seq: 3, Text: "c"}} {
		if err := s.Receive(peer, "bob", m); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.HaveFrom(peer); got != 1 {
		t.Fatalf("HaveFrom with a hole at 2 = %d, want 1", got)
	}
	if err := s.Receive(peer, "bob", mesh.Chat{Seq: 2}); err != nil {
		t.Fatal(err)
	}
	if got := s.HaveFrom(peer); got != 3 {
		t.Errorf("HaveFrom after the skip = %d, want 3", got)
	}
	log, _ := os.ReadFile(s.LogPath())
	if n := strings.Count(string(log), "bob:"); n != 2 {
		t.Errorf("log shows %d of bob's lines, want 2:\n%s", n, log)
	}
}

// TestStageReservesFirst: a staged line may be sent before it is on disk,
// so its number is already reserved in chat.seq when Stage returns.
func TestStageReservesFirst(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 2 * reserveAhead {
		m, ok, durable, err := s.Stage(fmt.Sprintf("line %d", i))
		if !ok || err != nil {
			t.Fatalf("Stage = %v, %v", ok, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "chat.seq"))
		if err != nil || len(b) != 8 || binary.BigEndian.Uint64(b) < m.Seq {
			t.Fatalf("chat.seq = %x, %v after staging seq %d: not reserved", b, err, m.Seq)
		}
		if err := durable(); err != nil {
			t.Fatal(err)
		}
	}
}
