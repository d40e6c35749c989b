//go:build linux

package fs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Sentinels of Mount; callers branch on them to explain or to clear a stale
// mount first.
var (
	// ErrNotFolder: the mount point (or a backing folder) is not a folder.
	ErrNotFolder = errors.New("not a folder")
	// ErrMounted: something is already mounted on the mount point (possibly
	// a stale mount left by a crash; see ClearStale).
	ErrMounted = errors.New("already a mount point")
)

// capHandleKillprivV2 is FUSE_HANDLE_KILLPRIV_V2 (bit 28 of the INIT
// flags), which go-fuse v2.12.1 has no name for. Advertising it stops the
// kernel from sending GETXATTR security.capability before every write(2):
// cp into outbox/ runs 2.2-2.5 times faster. The server then owns clearing
// suid/sgid on write; the backing file system does that for the loopback's
// writes.
const capHandleKillprivV2 = 1 << 28

// loopbackTimeout is the entry and attribute cache time of the loopback
// subtrees. Negative lookups are never cached, so a file sync renames into
// inbox/ is visible at once; what sync changes under a cached entry is
// dropped through Server.Changed (docs/fs-caching.md).
const loopbackTimeout = time.Second

// Config says what to mount where.
type Config struct {
	// Mountpoint is the existing folder the tree is mounted on.
	Mountpoint string
	// Root is the backing tree (STATE/tree); outbox/, sent/ and inbox/ are
	// served from Root/outbox, Root/sent and Root/inbox, and each member's
	// folder to/<name>/ from Root/to/<name> (created if missing: Root/to at
	// mount, Root/to/<name> when the member's folder is first looked up).
	Root string
	// ChatLog is the chat log file the chat file serves (sync's chat.log).
	// It may not exist yet; chat then reads as empty.
	ChatLog string
	// Syncer receives the files completed and removed in outbox/ and in
	// the members' folders to/<name>/, and chat lines (private ones too),
	// lists the members of dm/ and to/, and renders the peers file.
	// Required.
	Syncer Syncer
	// Logger receives the package's logs; nil discards them.
	Logger *slog.Logger
	// Debug logs every FUSE request and reply at debug level.
	Debug bool

	// cacheTimeout, when not zero, replaces loopbackTimeout. Tests lengthen
	// it so that only an invalidation can explain a fresh view.
	cacheTimeout time.Duration
}

// Server is a mounted meshfs tree.
type Server struct {
	// immutable after Mount
	srv        *fuse.Server
	root       *rootNode
	mountpoint string
	log        *slog.Logger
	inval      *invalidater // its goroutine runs from Mount to Unmount or the end of Wait

	unmountOnce sync.Once
	unmountErr  error // set once by unmountOnce
}

// Mount mounts the tree described by cfg and serves it until Unmount. It
// fails with a clear error when the mount point is missing, is not a
// folder, or is already a mount (ErrMounted).
func Mount(cfg Config) (*Server, error) {
	if cfg.Syncer == nil {
		return nil, errors.New("mount: config has no Syncer")
	}
	if cfg.Root == "" || cfg.ChatLog == "" {
		return nil, errors.New("mount: config needs Root and ChatLog")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mnt, err := resolveMountpoint(cfg.Mountpoint)
	if err != nil {
		return nil, err
	}
	root, err := newRoot(cfg, log)
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mnt, err)
	}
	srv, err := fusefs.Mount(mnt, root, mountOptions(cfg, log))
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mnt, err)
	}
	log.Info("mounted", "mountpoint", mnt, "root", cfg.Root)
	s := &Server{srv: srv, root: root, mountpoint: mnt, log: log,
		inval: newInvalidater(root.EmbeddedInode(), cfg.Root, log)}
	go s.inval.run()
	return s, nil
}

// resolveMountpoint returns the absolute, symlink-free mount point, or why it
// cannot be mounted on.
func resolveMountpoint(mountpoint string) (string, error) {
	if mountpoint == "" {
		return "", errors.New("mount point: empty path")
	}
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return "", fmt.Errorf("mount point %s: %w", mountpoint, err)
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, syscall.ENOTCONN) {
		return "", fmt.Errorf("mount point %s: %w: stale FUSE mount left by a crash (%w); clear it with fusermount3 -u -z", abs, ErrMounted, err)
	}
	if err != nil {
		return "", fmt.Errorf("mount point: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("mount point %s: %w", abs, ErrNotFolder)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("mount point: %w", err)
	}
	m, found, err := mountAt(real)
	if err != nil {
		return "", fmt.Errorf("mount point %s: %w", real, err)
	}
	if found {
		return "", fmt.Errorf("mount point %s: %w (type %s)", real, ErrMounted, m.fstype)
	}
	return real, nil
}

// mountOptions returns the mount's options: direct mount as root with
// fusermount3 fallback, passthrough kept (go-fuse's default for loopback
// files as root), no writeback cache (it would turn passthrough off), 1 MiB
// writes, KILLPRIV_V2, kernel permission checks, and no allow_other.
func mountOptions(cfg Config, log *slog.Logger) *fusefs.Options {
	timeout := loopbackTimeout
	if cfg.cacheTimeout != 0 {
		timeout = cfg.cacheTimeout
	}
	return &fusefs.Options{
		EntryTimeout: &timeout,
		AttrTimeout:  &timeout,
		// NegativeTimeout stays nil: ENOENT is never cached.
		Logger: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		MountOptions: fuse.MountOptions{
			FsName:            "meshfs",
			Name:              "meshfs",
			DirectMount:       os.Geteuid() == 0,
			MaxWrite:          fuse.MAX_KERNEL_WRITE,
			ExtraCapabilities: capHandleKillprivV2,
			Options:           []string{"default_permissions"},
			Debug:             cfg.Debug,
			Logger:            slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}
}

// Unmount unmounts the tree. When the mount is busy (a process has a file
// open or its working folder inside) it detaches it lazily instead: the
// mount point is free at once, and Wait returns when the last user lets
// go. Idempotent: later calls return the first call's result.
func (s *Server) Unmount() error {
	s.unmountOnce.Do(func() {
		// Stop invalidating first: a notification in flight holds a kernel
		// lock, and must not race the end of the connection.
		s.inval.stop()
		s.unmountErr = s.unmount()
	})
	return s.unmountErr
}

func (s *Server) unmount() error {
	err := s.srv.Unmount()
	if err == nil {
		s.log.Info("unmounted", "mountpoint", s.mountpoint)
		return nil
	}
	if _, mounted, merr := mountAt(s.mountpoint); merr == nil && !mounted {
		// Already detached (ClearStale, umount -l by hand): nothing to do;
		// Wait returns once the kernel drops the connection.
		s.log.Info("already unmounted", "mountpoint", s.mountpoint)
		return nil
	}
	s.log.Warn("mount point busy; detaching it lazily", "mountpoint", s.mountpoint, "err", err,
		"fix", "nothing: it goes once the programs using it let go")
	if lerr := lazyUnmount(s.mountpoint); lerr != nil {
		return fmt.Errorf("unmount %s: %w (lazy unmount: %w)", s.mountpoint, err, lerr)
	}
	return nil
}

// Wait blocks until the server stops serving: after Unmount, or once the
// last user of a lazily detached mount is gone. It also stops the
// invalidater when the mount ended without Unmount (unmounted from
// outside).
func (s *Server) Wait() {
	s.srv.Wait()
	s.inval.stop()
}

// Changed tells the mount that the entry rel of the backing tree was
// created, removed, replaced or rewritten behind the kernel's back, as the
// sync engine does when it places a received file in inbox/ or moves a
// delivered one away from outbox/ (to sent/) or from to/<name>/. rel is
// '/'-separated and relative to Config.Root ("inbox/alice/report.pdf",
// "outbox/docs", "to/bob/notes.txt"), and stands for everything below it
// too. What the kernel caches for it (entries, attributes, pages) is
// dropped shortly after, on the Server's own goroutine.
//
// Changed never blocks and may be called from any goroutine. It does
// nothing on a nil Server, after Unmount, or for a path outside outbox/,
// sent/, inbox/ and to/.
func (s *Server) Changed(rel string) {
	if s == nil {
		return
	}
	clean, ok := treePath(rel)
	if !ok {
		s.log.Debug("change outside the loopback subtrees ignored", "path", rel)
		return
	}
	s.inval.changed(clean)
}

// Writing reports whether a file at or below outbox path rel
// ('/'-separated, relative to outbox/) is open for writing through the
// mount. The Syncer asks before it moves a delivered folder to sent/, so
// a tool still writing there (git resolving a pack) keeps its files. It
// never blocks on the kernel and is false on a nil Server.
func (s *Server) Writing(rel string) bool {
	if s == nil {
		return false
	}
	return s.root.box.writingUnder(rel)
}

// WritingTo is Writing for to/<name>/: whether a file at or below rel
// (relative to to/<name>/) is open for writing through the mount.
func (s *Server) WritingTo(name, rel string) bool {
	if s == nil {
		return false
	}
	return s.root.to.writingUnder(name, rel)
}

// rootNode is the mount's top folder. Its children are fixed: the three
// loopback subtrees, the dm/ and to/ folders and the two synthetic files.
// It refuses every change.
type rootNode struct {
	fusefs.Inode
	fixedFolder // its entries are meshfs's: every change is refused

	// immutable after newRoot
	children []child
	mtime    time.Time
	box      *outbox // outbox/'s writers, for Server.Writing
	to       *toNode // the members' folders' writers, for Server.WritingTo
}

var (
	_ fusefs.NodeOnAdder   = (*rootNode)(nil)
	_ fusefs.NodeGetattrer = (*rootNode)(nil)
	_ fusefs.NodeLookuper  = (*rootNode)(nil)
)

// child is one fixed entry of the top folder.
type child struct {
	name string
	node fusefs.InodeEmbedder
	mode uint32 // S_IFDIR or S_IFREG
}

// newRoot builds the tree's nodes over cfg.Root, creating the backing
// folders that do not exist yet.
func newRoot(cfg Config, log *slog.Logger) (*rootNode, error) {
	dirs := map[string]string{}
	for _, name := range []string{"outbox", "sent", "inbox"} {
		dirs[name] = filepath.Join(cfg.Root, name)
		if err := os.MkdirAll(dirs[name], 0o700); err != nil {
			return nil, fmt.Errorf("backing folder: %w", err)
		}
	}
	outbox, err := newOutbox(dirs["outbox"], saltOutbox, "", cfg.Syncer, log)
	if err != nil {
		return nil, err
	}
	sent, err := newSent(dirs["sent"])
	if err != nil {
		return nil, err
	}
	inbox, err := newInbox(dirs["inbox"])
	if err != nil {
		return nil, err
	}
	errs := newErrnos(log)
	to, err := newTo(filepath.Join(cfg.Root, "to"), cfg.Syncer, errs, log)
	if err != nil {
		return nil, fmt.Errorf("backing folder: %w", err)
	}
	return &rootNode{
		children: []child{
			{"outbox", outbox, syscall.S_IFDIR},
			{"sent", sent, syscall.S_IFDIR},
			{"inbox", inbox, syscall.S_IFDIR},
			{"dm", newDM(cfg.Syncer, errs, log), syscall.S_IFDIR},
			{"to", to, syscall.S_IFDIR},
			{"chat", newChat("chat", cfg.ChatLog, cfg.Syncer.Say, errs), syscall.S_IFREG},
			{"peers", &peersNode{syncer: cfg.Syncer}, syscall.S_IFREG},
		},
		mtime: time.Now(),
		box:   outbox.box,
		to:    to,
	}, nil
}

// OnAdd attaches the fixed children when the root joins the mount.
func (r *rootNode) OnAdd(ctx context.Context) {
	for _, c := range r.children {
		ch := r.NewPersistentInode(ctx, c.node, fusefs.StableAttr{Mode: c.mode})
		r.AddChild(c.name, ch, false)
	}
}

func (r *rootNode) Getattr(ctx context.Context, f fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o755
	out.Nlink = 2 + 5 // outbox, sent, inbox, dm, to
	out.Uid, out.Gid = uint32(os.Getuid()), uint32(os.Getgid())
	out.SetTimes(nil, &r.mtime, &r.mtime)
	return 0
}

// Lookup is go-fuse's default child lookup, plus the child's own attribute
// timeout: the default drops it, which would cache chat's size for the
// mount-wide second.
func (r *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fusefs.Inode, syscall.Errno) {
	ch := r.GetChild(name)
	if ch == nil {
		return nil, syscall.ENOENT
	}
	if ga, ok := ch.Operations().(fusefs.NodeGetattrer); ok {
		var a fuse.AttrOut
		if errno := ga.Getattr(ctx, nil, &a); errno != 0 {
			return nil, errno
		}
		out.Attr = a.Attr
		if t := a.Timeout(); t != 0 {
			out.SetAttrTimeout(t)
		}
	}
	return ch, 0
}
