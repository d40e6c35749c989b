package chat

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// fakeSeal stands in for package seal: it "seals" by reversing the text,
// so a test sees that the store keeps only what the sealer gave it.
func fakeSeal(m record.Chat, text string) ([]byte, error) {
	b := []byte(text)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return append([]byte(m.To.Short()+":"), b...), nil
}

// TestPrivateLinesStored: a private line takes the author's next number like
// a room line, is stored and served only sealed, never shows in the room's
// log, and is listed by PrivateLines after a reopen, own and received.
func TestPrivateLinesStored(t *testing.T) {
	dir := t.TempDir()
	self, bob, carol := mesh.PeerID{1}, mesh.PeerID{2}, mesh.PeerID{3}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.SetSelf(self, "alice", nil)
	if _, _, err := s.AppendOwn("to the room"); err != nil {
		t.Fatal(err)
	}
	m, clean, ok, durable, err := s.StageTo(bob, "secret marker\x1b[2J", fakeSeal)
	if err != nil || !ok || durable() != nil {
		t.Fatalf("StageTo = %v, %v", ok, err)
	}
	if m.Seq != 2 || m.Text != "" || m.To != bob || !bytes.HasSuffix(m.Sealed, []byte("rekram terces")) || clean != "secret marker" {
		t.Fatalf("StageTo = %+v, clean %q; want seq 2, no text, sealed cleaned text", m, clean)
	}
	in := record.Chat{Author: carol, Seq: 1, Lamport: 9, Time: time.Now(), To: self, Sealed: []byte("sealed for alice"), Sig: []byte("sig")}
	if out, err := s.Accept(in, "carol"); err != nil || out != Added {
		t.Fatalf("Accept(private) = %v, %v", out, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetSelf(self, "alice", nil)
	raw, _ := os.ReadFile(filepath.Join(dir, "chat.jsonl"))
	log, _ := os.ReadFile(filepath.Join(dir, "chat.log"))
	if bytes.Contains(raw, []byte("secret")) || bytes.Contains(log, []byte("secret")) || strings.Count(string(log), "\n") != 1 {
		t.Fatalf("store or log shows the private line in the clear, or the log has other than the room line:\n%s", log)
	}
	if v := s.Vector(); v[self] != 2 || v[carol] != 1 {
		t.Fatalf("Vector = %v, want alice 2 and carol 1: private lines count", v)
	}
	own, err := s.After(self, 1, 10)
	if err != nil || len(own) != 1 || own[0].To != bob || !bytes.Equal(own[0].Sealed, m.Sealed) || own[0].Text != "" {
		t.Fatalf("After(self, 1) = %+v, %v; want the sealed private line", own, err)
	}
	var got []record.Chat
	var names []string
	err = s.PrivateLines(func(m record.Chat, name string) { got, names = append(got, m), append(names, name) })
	if err != nil || len(got) != 2 || got[0].Author != self || got[0].To != bob || got[1].Author != carol ||
		string(got[1].Sealed) != "sealed for alice" || names[1] != "carol" {
		t.Fatalf("PrivateLines = %+v %v, %v", got, names, err)
	}
}

// TestStageToSealFails: a line that cannot be sealed is refused and takes
// no number.
func TestStageToSealFails(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetSelf(mesh.PeerID{1}, "alice", nil)
	boom := errors.New("no key")
	_, _, _, _, err = s.StageTo(mesh.PeerID{2}, "hi", func(record.Chat, string) ([]byte, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("StageTo with a failing sealer = %v, want its error", err)
	}
	if m, _, err := s.AppendOwn("next"); err != nil || m.Seq != 1 {
		t.Fatalf("next line after a refused one: seq %d, %v; want 1", m.Seq, err)
	}
}
