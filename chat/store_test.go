package chat

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/record"

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
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	peer := mesh.PeerIDFromKey([]byte("bob's key"))
	s.SetSelf(mesh.PeerIDFromKey([]byte("alice's key")), "alice", nil)
	if _, ok, err := s.AppendOwn("one"); !ok || err != nil {
		t.Fatalf("AppendOwn = %v, %v", ok, err)
	}
	accept(t, s, peer, 1, "hi there", Added)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, _, err := s.AppendOwn("two")
	if err != nil || m.Seq != 2 {
		t.Fatalf("second own line: seq %d, err %v; want seq 2", m.Seq, err)
	}
	accept(t, s, peer, 1, "replayed", Duplicate)
	if got := s.Held(peer); got != 1 {
		t.Errorf("Held(bob) = %d, want 1", got)
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
	s, err := Open(t.TempDir())
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
	s, err := Open(dir)
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
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m, _, err := s.AppendOwn("four"); err != nil || m.Seq != 4 {
		t.Errorf("AppendOwn after a clean restart: seq %d, %v; want 4", m.Seq, err)
	}
}

// TestAcceptInOrder: a member's records are taken in its order only; one
// that comes before an earlier one is refused as a gap, and a skip (empty
// text) fills its number and shows nothing.
func TestAcceptInOrder(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	peer := mesh.PeerIDFromKey([]byte("bob's key"))
	accept(t, s, peer, 1, "a", Added)
	accept(t, s, peer, 3, "c", Gap)
	if got := s.Held(peer); got != 1 {
		t.Fatalf("Held with 2 missing = %d, want 1", got)
	}
	accept(t, s, peer, 2, "", Added)
	accept(t, s, peer, 3, "c", Added)
	accept(t, s, peer, 2, "", Duplicate)
	if got := s.Held(peer); got != 3 {
		t.Errorf("Held after the skip = %d, want 3", got)
	}
	if v := s.Vector(); v[peer] != 3 || len(v) != 1 {
		t.Errorf("Vector = %v, want bob at 3 only", v)
	}
	log, _ := os.ReadFile(s.LogPath())
	if n := strings.Count(string(log), "bob:"); n != 2 {
		t.Errorf("log shows %d of bob's lines, want 2:\n%s", n, log)
	}
}

// TestAfterServesEveryAuthor: what the store holds of any author comes back
// in order, own lines signed with the store's signer, others' as received.
func TestAfterServesEveryAuthor(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(nil)
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	self := mesh.PeerIDFromKey(spki)
	s.SetSelf(self, "alice", key)
	peer := mesh.PeerIDFromKey([]byte("bob's key"))
	for i := range 3 {
		if _, _, err := s.AppendOwn(fmt.Sprintf("own %d", i)); err != nil {
			t.Fatal(err)
		}
		accept(t, s, peer, uint64(i+1), fmt.Sprintf("bob %d", i), Added)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetSelf(self, "alice", key)
	own, err := s.After(self, 1, 10)
	if err != nil || len(own) != 2 || own[0].Seq != 2 || own[1].Text != "own 2" {
		t.Fatalf("After(self, 1) = %+v, %v; want own 1 and own 2", own, err)
	}
	for _, m := range own {
		if err := m.Verify(pub); err != nil {
			t.Errorf("own record %d as served: %v", m.Seq, err)
		}
	}
	theirs, err := s.After(peer, 0, 2)
	if err != nil || len(theirs) != 2 || theirs[0].Text != "bob 0" || theirs[1].Seq != 2 || string(theirs[1].Sig) != "sig 2" {
		t.Errorf("After(bob, 0, limit 2) = %+v, %v; want bob's first two as received", theirs, err)
	}
	if s.Vector()[self] != 3 || s.Vector()[peer] != 3 {
		t.Errorf("Vector after reopen = %v, want both at 3", s.Vector())
	}
}

// accept hands the store bob's record seq and checks the outcome.
func accept(t *testing.T, s *Store, author mesh.PeerID, seq uint64, text string, want Outcome) {
	t.Helper()
	m := record.Chat{Author: author, Seq: seq, Lamport: seq, Time: time.Now(), Text: text, Sig: []byte(fmt.Sprintf("sig %d", seq))}
	got, err := s.Accept(m, "bob")
	if err != nil || got != want {
		t.Fatalf("Accept(bob %d %q) = %v, %v; want %v", seq, text, got, err, want)
	}
}

// TestStageReservesFirst: a staged line may be sent before it is on disk,
// so its number is already reserved in chat.seq when Stage returns.
func TestStageReservesFirst(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
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
