package folder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Syncer is what the plain-folder driver needs from the sync engine.
// *Engine satisfies it; tests use a fake.
type Syncer interface {
	// OutboxClosed reports that rel (slash-separated, relative to outbox/)
	// is complete: a regular file no process holds open for writing (each
	// of its names, and again when its content, mtime or mode changed), a
	// symbolic link (never followed), or a folder that appeared (made or
	// moved in; in a folder moved in, also each folder without entries).
	// For a folder, the engine walks it itself.
	OutboxClosed(rel string)
	// OutboxRemoved reports that the file or folder at rel (relative to
	// outbox/) is gone.
	OutboxRemoved(rel string)
	// Say sends one chat line from the local user.
	Say(text string) error
	// ChatLogPath is the engine's rendered chat log, an append-only file.
	ChatLogPath() string
	// PeersTable is the rendered peers table.
	PeersTable() []byte
	// MembersChanged has a value after a member connected, left or was
	// removed: the peers file is rendered again at once then.
	MembersChanged() <-chan struct{}
	// Conversations lists the members this node may talk to privately, one
	// file under dm/ each: every current member but this node, sorted by
	// Name. It reads memory only.
	Conversations() []Conversation
	// SayTo sends one private line to the member whose Conversation.Name is
	// name, end-to-end encrypted to that member. A name that is not a current
	// member's fails (the error wraps fs.ErrNotExist).
	SayTo(name, text string) error
	// ToClosed is OutboxClosed for the folder to/<name>/ of the member
	// whose Conversation.Name is name: rel is relative to that folder. What
	// is put there goes to that member only, sealed to it.
	ToClosed(name, rel string)
	// ToRemoved is OutboxRemoved for to/<name>/.
	ToRemoved(name, rel string)
}

// Conversation is one file under dm/: a private conversation with one
// member.
type Conversation struct {
	Name string // the file name under dm/ (the member's display name, unique, safe as a file name)
	Log  string // the rendered conversation: an append-only file, which may not exist yet
}

// Config configures a Tree. Zero durations take the defaults.
type Config struct {
	// Dir is the tree root: Dir/outbox, Dir/sent, Dir/inbox, the files
	// Dir/chat, Dir/peers and Dir/dm/* this driver maintains, and the
	// folders Dir/to/<name>/ it makes, one per member.
	Dir string
	// Syncer is the engine that sends and receives; required.
	Syncer Syncer
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
	// Debounce is how long a path must stay quiet before it is acted on,
	// and how often a file still open for writing that no close watcher
	// covers is checked again. Default 200 ms.
	Debounce time.Duration
	// PeersRefresh is how often the peers table is rendered and compared
	// with the file while it changes; when it changed, the members are
	// read again for dm/ and to/. Each render that finds no change doubles
	// the wait, up to peersQuietFactor times PeersRefresh; a change, or
	// MembersChanged, brings it back. Default 1 s.
	PeersRefresh time.Duration
}

const (
	defaultDebounce     = 200 * time.Millisecond
	defaultPeersRefresh = time.Second
	// peersQuietFactor bounds the wait between renders of an unchanged
	// peers table: an idle member of a mesh of 100 rendered it every
	// second, a third of all it did.
	peersQuietFactor = 8
	chatName         = "chat"
	dmName           = "dm"
	peersName        = "peers"
	outboxName       = "outbox"
	toName           = "to"
)

// Tree keeps a plain folder (no FUSE) in step with the sync engine: it
// watches outbox/, to/*/, chat and dm/ with fsnotify and rewrites chat,
// dm/* and peers.
//
// Run starts these goroutines and stops them all before it returns:
// the fsnotify reader (which also adds new subfolders of the boxes), one
// debouncer for the boxes' paths (outbox/ and to/*/) and one for chat
// and dm/, the box loop (writer checks, reports to the engine; owner of
// the folders under to/), the chat loop (sole owner of Dir/chat and
// Dir/dm/*), and the peers loop (sole owner of Dir/peers).
type Tree struct {
	// Immutable after New.
	cfg     Config
	log     *slog.Logger
	dir     string // cfg.Dir, absolute with symlinks resolved, so /proc links compare equal
	outbox  string
	chat    string
	dm      string
	to      string
	peers   string
	chatLog string
	logs    *logSet // the logs the chat loop follows; changed by the chat loop, read by the event reader

	runMu   sync.Mutex // held by Run: a Tree runs once at a time
	started bool       // guarded by runMu
}

// errFolderRunning is returned when Run is called twice.
var errFolderRunning = errors.New("folder already running")

// New checks cfg, creates Dir/outbox, Dir/dm and Dir/to if missing, and
// returns a Tree ready to Run. It starts nothing.
func New(cfg Config) (*Tree, error) {
	if cfg.Syncer == nil {
		return nil, errors.New("new folder: no syncer")
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = defaultDebounce
	}
	if cfg.PeersRefresh <= 0 {
		cfg.PeersRefresh = defaultPeersRefresh
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := resolveDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	outbox := filepath.Join(dir, outboxName)
	if err := os.MkdirAll(outbox, 0o755); err != nil {
		return nil, fmt.Errorf("new folder: %w", err)
	}
	dm := filepath.Join(dir, dmName)
	if err := os.MkdirAll(dm, 0o700); err != nil { // private conversations
		return nil, fmt.Errorf("new folder: %w", err)
	}
	to := filepath.Join(dir, toName)
	if err := os.MkdirAll(to, 0o700); err != nil { // files for one member each
		return nil, fmt.Errorf("new folder: %w", err)
	}
	chatLog, err := filepath.Abs(cfg.Syncer.ChatLogPath())
	if err != nil {
		return nil, fmt.Errorf("new folder: chat log: %w", err)
	}
	return &Tree{
		cfg:     cfg,
		log:     log.With("dir", dir),
		dir:     dir,
		outbox:  outbox,
		chat:    filepath.Join(dir, chatName),
		dm:      dm,
		to:      to,
		peers:   filepath.Join(dir, peersName),
		chatLog: chatLog,
		logs:    newLogSet(chatLog),
	}, nil
}

// Writing reports whether a process holds a file at or below outbox path
// rel ('/'-separated, relative to outbox/) open for writing. The Syncer
// asks before it moves a delivered folder to sent/, so a tool still
// writing there (git resolving a pack) keeps its files. On Linux it scans
// /proc; elsewhere it reports no writer.
func (f *Tree) Writing(rel string) bool {
	return writingUnder(filepath.Join(f.outbox, filepath.FromSlash(rel)))
}

// WritingTo reports whether a file at or below rel (relative to
// to/<name>/) is open for writing. It is Writing for the folder of the
// member whose Conversation.Name is name; a name that is no single file
// name has no folder and reports no writer.
func (f *Tree) WritingTo(name, rel string) bool {
	if !validDMName(name) {
		return false
	}
	return writingUnder(filepath.Join(f.to, name, filepath.FromSlash(rel)))
}

// resolveDir makes dir absolute and resolves symlinks, because the
// kernel reports open files by their real path.
func resolveDir(dir string) (string, error) {
	if dir == "" {
		return "", errors.New("new folder: no dir")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("new folder: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("new folder: %w", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("new folder: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("new folder: %s is not a directory", real)
	}
	return real, nil
}

// Run watches the folder until ctx is done, then stops every goroutine it
// started and returns nil. It fails early if the watches cannot be set up.
func (f *Tree) Run(ctx context.Context) error {
	f.runMu.Lock()
	if f.started {
		f.runMu.Unlock()
		return errFolderRunning
	}
	f.started = true
	f.runMu.Unlock()

	w, err := newWatches()
	if err != nil {
		return fmt.Errorf("run folder: %w", err)
	}
	if err := f.addWatches(w); err != nil {
		w.close(f.log)
		return err
	}
	f.log.Info("plain folder watching", "chatlog", f.chatLog)
	f.runLoops(ctx, w)
	return nil
}

// watches are the folder's two inotify users: fsnotify for changes, and
// the close watcher for files closed after writing.
type watches struct {
	fs     *fsnotify.Watcher
	closes *closeWatcher
}

func newWatches() (*watches, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	cw, err := newCloseWatcher()
	if err != nil {
		fw.Close()
		return nil, err
	}
	return &watches{fs: fw, closes: cw}, nil
}

// add watches dir with both.
func (w *watches) add(dir string) error {
	if err := w.fs.Add(dir); err != nil {
		return err
	}
	return w.closes.Add(dir)
}

// close closes both, which ends their readers.
func (w *watches) close(log *slog.Logger) {
	if err := errors.Join(w.fs.Close(), w.closes.Close()); err != nil {
		log.Warn("file watcher not closed cleanly", "err", err, "fix", "nothing: meshfs is stopping")
	}
}

// addWatches watches Dir (for chat), Dir/dm, Dir/to, the chat log's
// folder, and outbox with every subfolder (the chat loop watches the dm
// logs' folders, the box loop each member's folder under to/). Files
// already in outbox are not reported: the engine rescans outbox itself
// at Start.
func (f *Tree) addWatches(w *watches) error {
	for _, d := range []string{f.dir, f.dm, f.to} {
		if err := w.add(d); err != nil {
			return fmt.Errorf("run folder: watch %s: %w", d, err)
		}
	}
	for _, d := range []string{filepath.Dir(f.chatLog)} {
		if err := w.fs.Add(d); err != nil {
			return fmt.Errorf("run folder: watch %s: %w", d, err)
		}
	}
	err := filepath.WalkDir(f.outbox, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if err := w.add(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("run folder: %w", err)
	}
	return nil
}

// runLoops starts the pipeline and waits for all of it. Shutdown runs
// downstream: closing the watchers ends their readers and then the event
// reader (it reads both until both are closed), which closes the
// debouncers' inputs, which close their outputs, which end the loops.
func (f *Tree) runLoops(ctx context.Context, w *watches) {
	closes := make(chan string)
	boxIn := make(chan event)
	boxOut := make(chan event)
	chatIn := make(chan event)
	chatOut := make(chan event)
	chatMembers := make(chan struct{}, 1) // peers loop to chat loop: the table changed
	boxMembers := make(chan struct{}, 1)  // peers loop to box loop: the table changed
	var wg sync.WaitGroup
	wg.Go(func() { debounce(boxIn, boxOut, f.cfg.Debounce, realClock{}) })
	wg.Go(func() { debounce(chatIn, chatOut, f.cfg.Debounce, realClock{}) })
	wg.Go(func() {
		defer close(closes)
		w.closes.run(func(p string) { closes <- p })
	})
	wg.Go(func() { f.readEvents(w, closes, boxIn, chatIn) })
	wg.Go(func() { f.boxLoop(ctx, boxOut, boxMembers, w.add) })
	wg.Go(func() { f.chatLoop(ctx, chatOut, chatMembers, w.fs.Add) })
	wg.Go(func() { f.peersLoop(ctx, chatMembers, boxMembers) })
	<-ctx.Done()
	w.close(f.log)
	wg.Wait()
	f.log.Info("plain folder stopped")
}
