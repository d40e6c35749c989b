package chat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfs/meshfs/record"

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
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := s.written.Load() // Open wrote a mark
	var syncs atomic.Int32
	var durable atomic.Pointer[[]byte] // the wal as last made durable
	durable.Store(new([]byte))
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) }) // a failing test must not leave Close waiting
	s.datasync = func(f *os.File) error {
		snap := make([]byte, walSize)
		if _, err := f.ReadAt(snap, 0); err != nil {
			return err
		}
		if syncs.Add(1) == 1 {
			close(entered)
			<-release
		}
		err := fdatasync(f)
		durable.Store(&snap)
		return err
	}
	type result struct {
		text    string
		durable []byte // at return
		err     error
	}
	results := make(chan result, 10)
	say := func(text string) {
		_, _, err := s.AppendOwn(text)
		results <- result{text, *durable.Load(), err}
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
	for range 10 {
		r := <-results
		if r.err != nil {
			t.Fatalf("AppendOwn(%q): %v", r.text, r.err)
		}
		if !bytes.Contains(r.durable, []byte(`"text":"`+r.text+`",`)) {
			t.Errorf("%q returned before a sync of the wal that holds it ended", r.text)
		}
	}
	if n := syncs.Load(); n != 2 {
		t.Errorf("%d syncs of the wal for ten lines, want 2 (one running, one shared by nine)", n)
	}
}

// TestCrashRepairsLog: the process dies (no Close) after lines were
// acknowledged. If only the log lost what was written after its last sync
// (a torn line at its end), reopening renders it exactly as it was. If the
// store lost it too (power loss), every acknowledged line comes back from
// the wal; received lines and events after the sync are gone from both,
// and catch-up asks for the received ones again.
func TestCrashRepairsLog(t *testing.T) {
	for _, storeLost := range []bool{false, true} {
		t.Run(fmt.Sprintf("store lost %v", storeLost), func(t *testing.T) { crashAndReopen(t, storeLost) })
	}
}

func crashAndReopen(t *testing.T, storeLost bool) {
	dir := t.TempDir()
	logPath, storePath := filepath.Join(dir, "chat.log"), filepath.Join(dir, "chat.jsonl")
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.SetSelf(mesh.PeerIDFromKey([]byte("alice's key")), "alice", nil)
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
	synced, storeSynced := int64(len(readFile(t, logPath))), int64(len(readFile(t, storePath)))
	for i := range 5 {
		say(fmt.Sprintf("after the sync %d", i))
		accept(t, s, bob, uint64(i+1), fmt.Sprintf("reply %d", i), Added)
	}
	if err := s.Event("bob left"); err != nil {
		t.Fatal(err)
	}
	want := readFile(t, logPath)
	if storeLost {
		if err := os.Truncate(storePath, storeSynced); err != nil {
			t.Fatal(err)
		}
		kept := want[:synced:synced]
		for _, l := range bytes.SplitAfter(want[synced:], []byte("\n")) {
			if bytes.Contains(l, []byte("] alice: ")) {
				kept = append(kept, l...)
			}
		}
		want = kept
	}
	if err := os.Truncate(logPath, synced); err != nil {
		t.Fatal(err)
	}
	appendFile(t, logPath, "[2026-12-07 01:")
	r, err := Open(dir) // s is never closed: it crashed
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := readFile(t, logPath); !bytes.Equal(got, want) {
		t.Errorf("log after repair:\n%s\nwant:\n%s", got, want)
	}
	// Lines 1..6 are back; the rest of the reservation is skipped (a crash
	// may have sent a line under it), so catch-up covers 1..64.
	var lines, all []uint64
	for _, m := range ownLines(t, r) {
		all = append(all, m.Seq)
		if m.Text != "" {
			lines = append(lines, m.Seq)
		}
	}
	if !slices.Equal(lines, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Errorf("own lines %v after the crash, want 1..6", lines)
	}
	last := all[len(all)-1]
	if len(all) != int(last) || last < 6 || last > 6+reserveAhead {
		t.Errorf("own seqs %v after the crash, want 1..N with 6 < N <= %d", all, 6+reserveAhead)
	}
	if m, _, err := r.AppendOwn("after the crash"); err != nil || m.Seq != last+1 {
		t.Errorf("first line after the crash: seq %d, %v; want %d", m.Seq, err, last+1)
	}
	s.closeFiles()
}

// TestLegacyLogKept: a store from before marks is taken as in sync with its
// log, whose event lines exist only there.
func TestLegacyLogKept(t *testing.T) {
	dir := t.TempDir()
	store := `{"self":true,"name":"alice","seq":1,"time":"2026-11-25T08:29:53Z","text":"hi"}` + "\n"
	log := "[2026-11-25 08:29:50] * bob joined\n[2026-11-25 08:29:53] alice: hi\n"
	appendFile(t, filepath.Join(dir, "chat.jsonl"), store)
	appendFile(t, filepath.Join(dir, "chat.log"), log)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := string(readFile(t, filepath.Join(dir, "chat.log"))); got != log {
		t.Errorf("legacy log changed to:\n%s", got)
	}
	if s, err = Open(dir); err != nil { // now with a mark: still as it was
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

// TestWALWraps: more own lines than the wal holds; the wal starts over
// after the store is synced, and a crash after that loses nothing.
func TestWALWraps(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", MaxBytes-10)
	n := 2*walSize/MaxBytes + 3
	for i := range n {
		if _, _, err := s.AppendOwn(fmt.Sprintf("%d %s", i, long)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(dir) // s crashed
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	lines := 0
	for _, m := range ownLines(t, r) {
		if m.Text != "" {
			lines++
		}
	}
	if lines != n {
		t.Errorf("%d own lines after the crash, want %d", lines, n)
	}
	// The rest of the last reservation is skipped: at most reserveAhead.
	if got := r.Held(r.selfID); got < uint64(n) || got > uint64(n+reserveAhead) {
		t.Errorf("last own seq after the crash %d, want %d to %d", got, n, n+reserveAhead)
	}
	s.closeFiles()
}

// ownLines is every own record the store holds, skips included.
func ownLines(t *testing.T, s *Store) []record.Chat {
	t.Helper()
	own, err := s.After(s.selfID, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return own
}
