package folder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshfs/meshfs/internal/testutil"
)

// fakeSyncer records what the driver reports and plays the engine's
// part for chat and dm: Say and SayTo append "me: text" to the log, as
// the engine does.
type fakeSyncer struct {
	logPath string

	mu         sync.Mutex
	closed     []string
	removed    []string
	toClosed   []string // "name/rel"
	toRemoved  []string // "name/rel"
	said       []string
	saidTo     []string // "name: text"
	members    []string // the names Conversations lists
	table      []byte
	tableReads int
	renders    []time.Time   // when each PeersTable call came
	membersCh  chan struct{} // MembersChanged
}

var _ Syncer = (*fakeSyncer)(nil)

func (s *fakeSyncer) OutboxClosed(rel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = append(s.closed, rel)
}

func (s *fakeSyncer) OutboxRemoved(rel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed = append(s.removed, rel)
}

func (s *fakeSyncer) ToClosed(name, rel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.toClosed = append(s.toClosed, name+"/"+rel)
}

func (s *fakeSyncer) ToRemoved(name, rel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.toRemoved = append(s.toRemoved, name+"/"+rel)
}

// toSnapshot returns copies of the ToClosed and ToRemoved calls, as
// "name/rel".
func (s *fakeSyncer) toSnapshot() (closed, removed []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.toClosed), slices.Clone(s.toRemoved)
}

func (s *fakeSyncer) Say(text string) error {
	s.mu.Lock()
	s.said = append(s.said, text)
	s.mu.Unlock()
	return s.appendLog("me: " + text + "\n")
}

// appendLog appends to the chat log, as the engine does for every message.
func (s *fakeSyncer) appendLog(line string) error { return appendTo(s.logPath, line) }

// appendTo appends line to the log at path, creating it.
func appendTo(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line)
	return errors.Join(err, f.Close())
}

func (s *fakeSyncer) ChatLogPath() string { return s.logPath }

// dmLog is the log of the conversation with name: in a folder that does
// not exist until the driver or the first line makes it.
func (s *fakeSyncer) dmLog(name string) string {
	return filepath.Join(filepath.Dir(s.logPath), "dm", name+".log")
}

func (s *fakeSyncer) Conversations() []Conversation {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cs []Conversation
	for _, name := range s.members {
		cs = append(cs, Conversation{Name: name, Log: s.dmLog(name)})
	}
	return cs
}

func (s *fakeSyncer) SayTo(name, text string) error {
	s.mu.Lock()
	if !slices.Contains(s.members, name) {
		s.mu.Unlock()
		return fmt.Errorf("say to %s: %w", name, fs.ErrNotExist)
	}
	s.saidTo = append(s.saidTo, name+": "+text)
	s.mu.Unlock()
	return s.appendDM(name, "me: "+text+"\n")
}

// appendDM appends to the log of the conversation with name.
func (s *fakeSyncer) appendDM(name, line string) error {
	if err := os.MkdirAll(filepath.Dir(s.dmLog(name)), 0o700); err != nil {
		return err
	}
	return appendTo(s.dmLog(name), line)
}

// setMembers sets the members and changes the peers table with them, as
// the engine's table changes with its members.
func (s *fakeSyncer) setMembers(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members = slices.Sorted(slices.Values(names))
	s.table = []byte("NAME STATE\n" + strings.Join(s.members, " member\n") + " member\n")
}

// forget drops a member the way a removal the driver has not yet seen
// looks: SayTo fails, the table is unchanged.
func (s *fakeSyncer) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members = slices.DeleteFunc(s.members, func(m string) bool { return m == name })
}

// saidToSnapshot returns a copy of the SayTo calls, as "name: text".
func (s *fakeSyncer) saidToSnapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.saidTo)
}

func (s *fakeSyncer) PeersTable() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tableReads++
	s.renders = append(s.renders, time.Now())
	return bytes.Clone(s.table)
}

// reads is how many times the table was rendered.
func (s *fakeSyncer) reads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tableReads
}

func (s *fakeSyncer) MembersChanged() <-chan struct{} { return s.membersCh }

// renderTimes returns when each render came.
func (s *fakeSyncer) renderTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.renders)
}

func (s *fakeSyncer) setTable(table string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table = []byte(table)
}

// snapshot returns copies of the recorded calls.
func (s *fakeSyncer) snapshot() (closed, removed, said []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.closed), slices.Clone(s.removed), slices.Clone(s.said)
}

// logCounter counts log records by message, so a test can wait for
// the driver to have looked at something instead of sleeping.
type logCounter struct {
	slog.Handler
	mu     *sync.Mutex
	counts map[string]int
}

func (h logCounter) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	h.counts[r.Message]++
	h.mu.Unlock()
	return h.Handler.Handle(ctx, r)
}

func (h logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(as)
	return h
}

func (h logCounter) WithGroup(name string) slog.Handler {
	h.Handler = h.Handler.WithGroup(name)
	return h
}

func (h logCounter) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[msg]
}

// harness is one running Tree on a temp dir with a fake engine.
type harness struct {
	tree   *Tree
	dir    string
	syncer *fakeSyncer
	logs   logCounter
}

// startTree runs a Tree on a fresh temp dir. prepare runs first, to
// leave files from "an earlier run". Cleanup stops the Tree, checks that
// Run returned nil, and that no goroutine leaked.
func startTree(t *testing.T, prepare func(dir, logPath string)) *harness {
	t.Helper()
	return startTreeMembers(t, nil, prepare)
}

// startTreeMembers is startTree with these members to talk to privately
// from the start.
func startTreeMembers(t *testing.T, members []string, prepare func(dir, logPath string)) *harness {
	t.Helper()
	leaks := goleak.IgnoreCurrent()
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "sync")
	if err := os.MkdirAll(filepath.Join(dir, "outbox"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	h := &harness{dir: dir, syncer: &fakeSyncer{logPath: filepath.Join(state, "chat.log"), membersCh: make(chan struct{}, 1)}}
	h.syncer.setTable("NAME STATE\n")
	if members != nil {
		h.syncer.setMembers(members...)
	}
	if prepare != nil {
		prepare(dir, h.syncer.logPath)
	}
	h.logs = logCounter{Handler: testutil.Logger(t).Handler(), mu: new(sync.Mutex), counts: map[string]int{}}
	f, err := New(Config{
		Dir: dir, Syncer: h.syncer, Logger: slog.New(h.logs),
		Debounce: 30 * time.Millisecond, PeersRefresh: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.tree = f
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
		goleak.VerifyNone(t, leaks)
	})
	// The peers file is written once the watches are in place.
	h.waitFor(t, "peers file written", func() error {
		_, err := os.Stat(filepath.Join(dir, "peers"))
		return err
	})
	return h
}

func (h *harness) waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	if err := testutil.WaitFor(10*time.Second, f); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func (h *harness) path(rel string) string { return filepath.Join(h.dir, filepath.FromSlash(rel)) }

// waitClosed waits until OutboxClosed was called for rel.
func (h *harness) waitClosed(t *testing.T, rel string) {
	t.Helper()
	h.waitFor(t, "OutboxClosed("+rel+")", func() error {
		if closed, _, _ := h.syncer.snapshot(); !slices.Contains(closed, rel) {
			return fmt.Errorf("closed = %q", closed)
		}
		return nil
	})
}

// writeFile writes a file in one go, creating its folder.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func countOf(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}
