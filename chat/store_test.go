package chat

import (
	"errors"
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
