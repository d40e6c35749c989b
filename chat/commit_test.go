package chat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

// waitUntil polls cond until it holds or a deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitSharesFsyncs: while one fsync of the store runs, nine
// more writers append their lines and wait; none returns before an fsync
// that started after its line was written has ended, and one fsync covers
// all nine.
func TestGroupCommitSharesFsyncs(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := s.written.Load() // Open wrote a mark
	var syncs atomic.Int32
	var durable atomic.Int64 // store bytes known on disk
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) }) // a failing test must not leave Close waiting
	s.fsync = func(f *os.File) error {
		if f != s.store {
			return f.Sync()
		}
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if syncs.Add(1) == 1 {
			close(entered)
			<-release
		}
		err = f.Sync()
		durable.Store(fi.Size())
		return err
	}
	type result struct {
		text    string
		durable int64 // at return
		err     error
	}
	results := make(chan result, 10)
	say := func(text string) {
		_, _, err := s.AppendOwn(text)
		results <- result{text, durable.Load(), err}
	}
	go say("line 0")
	select {
	case <-entered:
	case r := <-results:
		t.Fatalf("%q returned without an fsync", r.text)
	}
	for i := 1; i < 10; i++ {
		go say(fmt.Sprintf("line %d", i))
	}
	waitUntil(t, "ten records written", func() bool { return s.written.Load() == base+10 })
	select {
	case r := <-results:
		t.Fatalf("%q returned while the first fsync was still running", r.text)
	default:
	}
	once.Do(func() { close(release) })
	data := readFile(t, filepath.Join(dir, "chat.jsonl"))
	for range 10 {
		r := <-results
		if r.err != nil {
			t.Fatalf("AppendOwn(%q): %v", r.text, r.err)
		}
		end := bytes.Index(data, []byte(`"text":"`+r.text+`"`))
		if end < 0 || int64(end) >= r.durable {
			t.Errorf("%q returned with %d store bytes durable; its record is at %d", r.text, r.durable, end)
		}
	}
	if n := syncs.Load(); n != 2 {
		t.Errorf("%d fsyncs of the store for ten lines, want 2 (one running, one shared by nine)", n)
	}
}

// TestCrashRepairsLog: the process dies (no Close) after lines were
// acknowledged, and the log lost what was written after its last fsync,
// ending in a torn line. Reopening finds every acknowledged line in the
// store and renders the log exactly as it was.
func TestCrashRepairsLog(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "chat.log")
	s, err := Open(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	s.SetSelf(mesh.PeerIDFromKey([]byte("alice's key")), "alice")
	bob := mesh.PeerIDFromKey([]byte("bob's key"))
	say := func(text string) {
		if _, ok, err := s.AppendOwn(text); !ok || err != nil {
			t.Fatalf("AppendOwn(%q) = %v, %v", text, ok, err)
		}
	}
	say("before the sync")
	if err := s.Event("bob joined"); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	synced := int64(len(readFile(t, logPath)))
	for i := range 5 {
		say(fmt.Sprintf("after the sync %d", i))
		if err := s.Receive(bob, "bob", mesh.Chat{Seq: uint64(i + 1), Text: fmt.Sprintf("reply %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Event("bob left"); err != nil {
		t.Fatal(err)
	}
	want := readFile(t, logPath)
	// The crash: the store's handles stay open, the log loses its tail.
	if err := os.Truncate(logPath, synced); err != nil {
		t.Fatal(err)
	}
	appendFile(t, logPath, "[2026-12-07 01:")
	r, err := Open(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := readFile(t, logPath); !bytes.Equal(got, want) {
		t.Errorf("log after repair:\n%s\nwant:\n%s", got, want)
	}
	var seqs []uint64
	for _, m := range r.OwnAfter(0) {
		seqs = append(seqs, m.Seq)
	}
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5, 6}) || r.HaveFrom(bob) != 5 {
		t.Errorf("own seqs %v, have %d from bob; want 1..6 and 5", seqs, r.HaveFrom(bob))
	}
	s.store.Close()
	s.log.Close()
}

// TestLegacyLogKept: a store from before marks is taken as in sync with its
// log, whose event lines exist only there.
func TestLegacyLogKept(t *testing.T) {
	dir := t.TempDir()
	store := `{"self":true,"name":"alice","seq":1,"time":"2026-11-25T08:29:53Z","text":"hi"}` + "\n"
	log := "[2026-11-25 08:29:50] * bob joined\n[2026-11-25 08:29:53] alice: hi\n"
	appendFile(t, filepath.Join(dir, "chat.jsonl"), store)
	appendFile(t, filepath.Join(dir, "chat.log"), log)
	s, err := Open(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := string(readFile(t, filepath.Join(dir, "chat.log"))); got != log {
		t.Errorf("legacy log changed to:\n%s", got)
	}
	if s, err = Open(dir, 100); err != nil { // now with a mark: still as it was
		t.Fatal(err)
	}
	s.Close()
	if got := string(readFile(t, filepath.Join(dir, "chat.log"))); got != log {
		t.Errorf("legacy log changed on the second open to:\n%s", got)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func appendFile(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
