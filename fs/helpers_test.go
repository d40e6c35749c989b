//go:build linux

package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// call is one recorded Syncer call.
type call struct {
	op  string // "closed", "removed", "say", "sayto", "toclosed", "toremoved"
	arg string // for "sayto", "name: line"; for "toclosed" and "toremoved", "name: rel"
}

func (c call) String() string { return c.op + "(" + c.arg + ")" }

// fakeSyncer records every call. Say appends nothing to the chat log; the
// tests write the log themselves.
type fakeSyncer struct {
	mu     sync.Mutex
	calls  []call            // guarded by mu
	table  []byte            // guarded by mu
	sayErr map[string]error  // guarded by mu: lines Say refuses
	unsent map[string]string // guarded by mu: UnsentReason's answers
	convs  []Conversation    // guarded by mu: Conversations' answer
	// toDeliv and toUnsent are guarded by mu: ToDelivery's and
	// ToUnsentReason's answers, keyed by "name: rel".
	toDeliv  map[string]map[string]string
	toUnsent map[string]string
}

func (f *fakeSyncer) UnsentReason(rel string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unsent[rel]
}

func (f *fakeSyncer) setUnsent(rel, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unsent == nil {
		f.unsent = map[string]string{}
	}
	f.unsent[rel] = why
}

var _ Syncer = (*fakeSyncer)(nil)

func (f *fakeSyncer) record(op, arg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{op, arg})
}

func (f *fakeSyncer) OutboxClosed(rel string)  { f.record("closed", rel) }
func (f *fakeSyncer) OutboxRemoved(rel string) { f.record("removed", rel) }

func (f *fakeSyncer) ToClosed(name, rel string)  { f.record("toclosed", name+": "+rel) }
func (f *fakeSyncer) ToRemoved(name, rel string) { f.record("toremoved", name+": "+rel) }

func (f *fakeSyncer) ToDelivery(name, rel string) (map[string]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	members, ok := f.toDeliv[name+": "+rel]
	return members, ok
}

func (f *fakeSyncer) setToDelivery(name, rel string, members map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.toDeliv == nil {
		f.toDeliv = map[string]map[string]string{}
	}
	f.toDeliv[name+": "+rel] = members
}

func (f *fakeSyncer) ToUnsentReason(name, rel string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.toUnsent[name+": "+rel]
}

func (f *fakeSyncer) setToUnsent(name, rel, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.toUnsent == nil {
		f.toUnsent = map[string]string{}
	}
	f.toUnsent[name+": "+rel] = why
}

func (f *fakeSyncer) Say(text string) error {
	f.mu.Lock()
	err := f.sayErr[text]
	f.mu.Unlock()
	if err != nil {
		return err
	}
	f.record("say", text)
	return nil
}

func (f *fakeSyncer) Conversations() []Conversation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.convs)
}

func (f *fakeSyncer) setConversations(convs ...Conversation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.convs = convs
}

// SayTo records the line for a current member, and refuses other names as
// the engine does: with an error whose Errno() is ENOENT.
func (f *fakeSyncer) SayTo(name, text string) error {
	f.mu.Lock()
	known := slices.ContainsFunc(f.convs, func(c Conversation) bool { return c.Name == name })
	f.mu.Unlock()
	if !known {
		return fmt.Errorf("say to %s: %w", name, errnoError{syscall.ENOENT})
	}
	f.record("sayto", name+": "+text)
	return nil
}

func (f *fakeSyncer) PeersTable() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.table)
}

func (f *fakeSyncer) setTable(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.table = b
}

func (f *fakeSyncer) refuse(line string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sayErr == nil {
		f.sayErr = make(map[string]error)
	}
	f.sayErr[line] = err
}

// snapshot returns the calls so far with operation op ("" for all).
func (f *fakeSyncer) snapshot(op string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if op == "" || c.op == op {
			out = append(out, c)
		}
	}
	return out
}

// waitCalls polls until the calls with operation op are exactly want.
func (f *fakeSyncer) waitCalls(t *testing.T, op string, want ...call) {
	t.Helper()
	err := testutil.WaitFor(5*time.Second, func() error {
		if got := f.snapshot(op); !slices.Equal(got, want) {
			return fmt.Errorf("%s calls = %v, want %v", op, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitCallSet is waitCalls for calls whose order the kernel does not fix:
// each file's Release is asynchronous, so two files closed one after the
// other may be reported in either order.
func (f *fakeSyncer) waitCallSet(t *testing.T, op string, want ...call) {
	t.Helper()
	key := func(c call) string { return fmt.Sprint(c) }
	sorted := func(cs []call) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = key(c)
		}
		slices.Sort(out)
		return out
	}
	err := testutil.WaitFor(5*time.Second, func() error {
		if got := f.snapshot(op); !slices.Equal(sorted(got), sorted(want)) {
			return fmt.Errorf("%s calls = %v, want %v in any order", op, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// mounted is one test mount.
type mounted struct {
	mnt     string // the mount point
	root    string // the backing tree
	chatLog string
	fake    *fakeSyncer
	srv     *Server
}

func (m *mounted) path(rel string) string    { return filepath.Join(m.mnt, rel) }
func (m *mounted) backing(rel string) string { return filepath.Join(m.root, rel) }

// outbox returns the mount's outbox state, to wait for releases.
func (m *mounted) outbox() *outbox {
	return m.srv.root.children[0].node.(*outboxNode).box
}

// openWriters returns how many writable outbox handles are open.
func (m *mounted) openWriters() int {
	b := m.outbox()
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.handles)
}

// mountTest mounts a fresh tree on a temporary folder and unmounts it when
// the test ends (lazily if a test left it busy).
func mountTest(t *testing.T) *mounted {
	t.Helper()
	return mountWith(t, nil)
}

// mountWith is mountTest with a Config that edit, when not nil, changes
// before mounting.
func mountWith(t *testing.T, edit func(*Config)) *mounted {
	t.Helper()
	testutil.RequireFUSE(t)
	dir := t.TempDir()
	m := &mounted{
		mnt:     filepath.Join(dir, "mnt"),
		root:    filepath.Join(dir, "tree"),
		chatLog: filepath.Join(dir, "chat.log"),
		fake:    &fakeSyncer{},
	}
	for _, d := range []string{m.mnt, m.root} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{
		Mountpoint: m.mnt,
		Root:       m.root,
		ChatLog:    m.chatLog,
		Syncer:     m.fake,
		Logger:     slog.New(failOnWarn{testutil.Logger(t).Handler(), t}),
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := Mount(cfg)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	m.srv = srv
	t.Cleanup(func() { stop(t, srv) })
	return m
}

// failOnWarn fails the test when go-fuse warns that a Getattr reported an
// inode number other than the node's: the salted numbers of the loopback
// subtrees must be reported as go-fuse knows them. (go-fuse's warnings
// about orphaned paths are expected: O_TMPFILE files and files unlinked
// during a race have no path.)
type failOnWarn struct {
	slog.Handler
	t *testing.T
}

func (h failOnWarn) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && strings.Contains(r.Message, "overriding ino") {
		h.t.Errorf("go-fuse warning: %s", r.Message)
	}
	return h.Handler.Handle(ctx, r)
}

// stop unmounts srv and waits (bounded) for its serve loop to end.
func stop(t *testing.T, srv *Server) {
	t.Helper()
	if err := srv.Unmount(); err != nil {
		t.Errorf("Unmount: %v", err)
	}
	done := make(chan struct{})
	go func() {
		srv.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("Wait did not return after Unmount")
	}
}

// errIs fails the test unless err matches want.
func errIs(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}
