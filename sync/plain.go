package sync

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

// FolderSyncer is what the plain-folder driver needs from the sync engine.
// *Engine satisfies it; tests use a fake.
type FolderSyncer interface {
	// OutboxClosed reports that the file at rel (slash-separated, relative
	// to outbox/) is complete: no process holds it open for writing.
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
}

// FolderConfig configures a Folder. Zero durations take the defaults.
type FolderConfig struct {
	// Dir is the tree root: Dir/outbox, Dir/sent, Dir/inbox, and the files
	// Dir/chat and Dir/peers this driver maintains.
	Dir string
	// Syncer is the engine that sends and receives; required.
	Syncer FolderSyncer
	// Logger receives the driver's logs; nil discards them.
	Logger *slog.Logger
	// Debounce is how long a path must stay quiet before it is acted on,
	// and how often files still open for writing are checked again.
	// Default 200 ms.
	Debounce time.Duration
	// PeersRefresh is how often the peers table is rendered and compared,
	// and how often the chat file is re-checked in case an event was lost.
	// Default 1 s.
	PeersRefresh time.Duration
}

const (
	plainDefaultDebounce     = 200 * time.Millisecond
	plainDefaultPeersRefresh = time.Second
	plainChatName            = "chat"
	plainPeersName           = "peers"
	plainOutboxName          = "outbox"
)

// Folder keeps a plain folder (no FUSE) in step with the sync engine: it
// watches outbox/ and chat with fsnotify and rewrites chat and peers.
//
// Run starts these goroutines and stops them all before it returns:
// the fsnotify reader (which also adds new outbox subfolders), one
// debouncer for outbox paths and one for chat, the outbox loop (writer
// checks, reports to the engine), the chat loop (sole owner of Dir/chat),
// and the peers loop (sole owner of Dir/peers).
type Folder struct {
	// Immutable after NewFolder.
	cfg     FolderConfig
	log     *slog.Logger
	dir     string // cfg.Dir, absolute with symlinks resolved, so /proc links compare equal
	outbox  string
	chat    string
	peers   string
	chatLog string

	runMu   sync.Mutex // held by Run: a Folder runs once at a time
	started bool       // guarded by runMu
}

// errFolderRunning is returned when Run is called twice.
var errFolderRunning = errors.New("folder already running")

// NewFolder checks cfg, creates Dir/outbox if missing, and returns a Folder
// ready to Run. It starts nothing.
func NewFolder(cfg FolderConfig) (*Folder, error) {
	if cfg.Syncer == nil {
		return nil, errors.New("new folder: no syncer")
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = plainDefaultDebounce
	}
	if cfg.PeersRefresh <= 0 {
		cfg.PeersRefresh = plainDefaultPeersRefresh
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := plainResolveDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	outbox := filepath.Join(dir, plainOutboxName)
	if err := os.MkdirAll(outbox, 0o755); err != nil {
		return nil, fmt.Errorf("new folder: %w", err)
	}
	chatLog, err := filepath.Abs(cfg.Syncer.ChatLogPath())
	if err != nil {
		return nil, fmt.Errorf("new folder: chat log: %w", err)
	}
	return &Folder{
		cfg:     cfg,
		log:     log.With("dir", dir),
		dir:     dir,
		outbox:  outbox,
		chat:    filepath.Join(dir, plainChatName),
		peers:   filepath.Join(dir, plainPeersName),
		chatLog: chatLog,
	}, nil
}

// plainResolveDir makes dir absolute and resolves symlinks, because the
// kernel reports open files by their real path.
func plainResolveDir(dir string) (string, error) {
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
func (f *Folder) Run(ctx context.Context) error {
	f.runMu.Lock()
	if f.started {
		f.runMu.Unlock()
		return errFolderRunning
	}
	f.started = true
	f.runMu.Unlock()

	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("run folder: %w", err)
	}
	if err := f.plainAddWatches(w); err != nil {
		w.Close()
		return err
	}
	f.log.Info("plain folder watching", "chatlog", f.chatLog)
	f.plainRunLoops(ctx, w)
	return nil
}

// plainAddWatches watches Dir (for chat), the chat log's folder, and outbox
// with every subfolder. Files already in outbox are not reported: the
// engine rescans outbox itself at Start.
func (f *Folder) plainAddWatches(w *fsnotify.Watcher) error {
	for _, d := range []string{f.dir, filepath.Dir(f.chatLog)} {
		if err := w.Add(d); err != nil {
			return fmt.Errorf("run folder: watch %s: %w", d, err)
		}
	}
	err := filepath.WalkDir(f.outbox, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if err := w.Add(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("run folder: %w", err)
	}
	return nil
}

// plainRunLoops starts the pipeline and waits for all of it. Shutdown runs
// downstream: closing the watcher ends the reader, which closes the
// debouncers' inputs, which close their outputs, which end the loops.
func (f *Folder) plainRunLoops(ctx context.Context, w *fsnotify.Watcher) {
	outboxIn := make(chan watchEvent)
	outboxOut := make(chan watchEvent)
	chatIn := make(chan watchEvent)
	chatOut := make(chan watchEvent)
	var wg sync.WaitGroup
	wg.Go(func() { watchDebounce(outboxIn, outboxOut, f.cfg.Debounce, watchRealClock{}) })
	wg.Go(func() { watchDebounce(chatIn, chatOut, f.cfg.Debounce, watchRealClock{}) })
	wg.Go(func() { f.plainRead(w, outboxIn, chatIn) })
	wg.Go(func() { f.plainOutboxLoop(ctx, outboxOut) })
	wg.Go(func() { f.plainChatLoop(ctx, chatOut) })
	wg.Go(func() { f.plainPeersLoop(ctx) })
	<-ctx.Done()
	if err := w.Close(); err != nil {
		f.log.Warn("close watcher", "err", err)
	}
	wg.Wait()
	f.log.Info("plain folder stopped")
}
