//go:build linux

package fs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	fusefs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// uncached is the attribute timeout of the synthetic files. go-fuse
// replaces a zero timeout with the mount-wide one (Options.AttrTimeout), so
// use the smallest non-zero value: tail -f polls fstat and needs the true,
// growing size.
const uncached = time.Nanosecond

// maxPending bounds the unfinished last line a chat handle buffers. A longer
// "line" is handed to Say or SayTo at once (which will refuse it, or send
// it), so a writer without newlines cannot grow the buffer without limit.
const maxPending = 64 << 10

// chatNode is a synthetic conversation file: the chat file, and each file
// under dm/. Reads give the bytes of a log written by sync; writes become
// one call of say per line. One type serves both, so a private
// conversation behaves exactly like the room's.
type chatNode struct {
	fusefs.Inode

	// immutable after newChat
	name  string             // the file's path in the mount, for logs: "chat", "dm/bob"
	log   string             // the log file served
	say   func(string) error // sends one line: Syncer.Say, or SayTo for one member
	errs  *errnos
	mtime time.Time // reported while the log does not exist yet
}

var (
	_ fusefs.NodeGetattrer  = (*chatNode)(nil)
	_ fusefs.NodeSetattrer  = (*chatNode)(nil)
	_ fusefs.NodeOpener     = (*chatNode)(nil)
	_ fusefs.NodeSetxattrer = (*chatNode)(nil)
)

// newChat returns a conversation file that serves log and hands each line
// written to it to say; name is its path in the mount, for the log.
func newChat(name, log string, say func(string) error, errs *errnos) *chatNode {
	return &chatNode{name: name, log: log, say: say, errs: errs, mtime: time.Now()}
}

// attr fills a with the file's attributes: the log's true size and
// mtime (0 and the mount time while it does not exist).
func (n *chatNode) attr(a *fuse.Attr) syscall.Errno {
	a.Mode = syscall.S_IFREG | 0o600
	a.Nlink = 1
	a.Uid, a.Gid = uint32(os.Getuid()), uint32(os.Getgid())
	var st syscall.Stat_t
	err := syscall.Stat(n.log, &st)
	switch {
	case err == nil:
		a.Size = uint64(st.Size)
		a.Blocks = uint64(st.Blocks)
		a.Mtime, a.Mtimensec = uint64(st.Mtim.Sec), uint32(st.Mtim.Nsec)
		a.Ctime, a.Ctimensec = uint64(st.Ctim.Sec), uint32(st.Ctim.Nsec)
		a.Atime, a.Atimensec = uint64(st.Atim.Sec), uint32(st.Atim.Nsec)
	case errors.Is(err, syscall.ENOENT):
		a.SetTimes(nil, &n.mtime, &n.mtime)
	default:
		return n.errs.errno("chat stat", err)
	}
	return 0
}

func (n *chatNode) Getattr(ctx context.Context, f fusefs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.SetTimeout(uncached)
	return n.attr(&out.Attr)
}

// Setattr accepts a size change without touching the log: `echo hi > chat`
// opens with O_TRUNC, which the kernel sends as SETATTR size=0, and the log
// is append-only. Times are accepted and ignored too (touch); mode and
// owner are fixed.
func (n *chatNode) Setattr(ctx context.Context, f fusefs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	_, setMode := in.GetMode()
	_, setUID := in.GetUID()
	_, setGID := in.GetGID()
	if setMode || setUID || setGID {
		return syscall.EPERM
	}
	out.SetTimeout(uncached)
	return n.attr(&out.Attr)
}

// Setxattr refuses extended attributes, so tools copying metadata (mv, cp -a)
// carry on.
func (n *chatNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return syscall.ENOTSUP
}

// Open returns a direct-I/O handle: every read goes to the log, whose size
// the page cache would not follow.
func (n *chatNode) Open(ctx context.Context, flags uint32) (fusefs.FileHandle, uint32, syscall.Errno) {
	return &chatHandle{node: n}, fuse.FOPEN_DIRECT_IO, 0
}

// chatHandle is one open file description of a chatNode. It buffers the
// unfinished last line written through it.
type chatHandle struct {
	node *chatNode

	mu      sync.Mutex
	pending []byte // guarded by mu: bytes after the last "\n" written
}

var (
	_ fusefs.FileReader   = (*chatHandle)(nil)
	_ fusefs.FileWriter   = (*chatHandle)(nil)
	_ fusefs.FileFlusher  = (*chatHandle)(nil)
	_ fusefs.FileReleaser = (*chatHandle)(nil)
)

// Read serves the log's bytes at off; the log is opened per read so a log
// that sync replaces is never read stale.
func (h *chatHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f, err := os.Open(h.node.log)
	if errors.Is(err, os.ErrNotExist) {
		return fuse.ReadResultData(nil), 0
	}
	if err != nil {
		return nil, h.node.errs.errno("chat read", err)
	}
	defer f.Close()
	n, err := f.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, h.node.errs.errno("chat read", err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// Write ignores off: the chat is append-only, and for O_APPEND the kernel
// derives off from a size it may have cached. Each complete line goes to
// say in order; if say refuses one, the write fails with its errno and the
// buffered rest is dropped (the writer sees the error).
func (h *chatHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending = append(h.pending, data...)
	for {
		i := bytes.IndexByte(h.pending, '\n')
		if i < 0 {
			break
		}
		line := string(h.pending[:i])
		h.pending = h.pending[i+1:]
		if errno := h.say(line); errno != 0 {
			h.pending = nil
			return 0, errno
		}
	}
	if len(h.pending) > maxPending {
		if errno := h.sendPending(); errno != 0 {
			return 0, errno
		}
	}
	// Keep the unfinished line in a buffer of its own, not in the tail of
	// a large one.
	h.pending = bytes.Clone(h.pending)
	return uint32(len(data)), 0
}

// say hands one line to the Syncer; empty lines are not messages.
func (h *chatHandle) say(line string) syscall.Errno {
	if line == "" {
		return 0
	}
	return h.node.errs.say(h.node.say(line))
}

// sendPending sends the unfinished last line, if any. Called with mu held.
func (h *chatHandle) sendPending() syscall.Errno {
	line := string(h.pending)
	h.pending = nil
	return h.say(line)
}

// Flush runs on every close(2) of a descriptor of this handle: send the
// unfinished line now, so close reports a refusal.
func (h *chatHandle) Flush(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sendPending()
}

// Release sends what Flush could not (normally nothing). The kernel ignores
// its result, so a refusal here is only logged.
func (h *chatHandle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	if errno := h.sendPending(); errno != 0 {
		h.node.errs.log.Warn("chat line not sent", "file", h.node.name, "errno", errno,
			"fix", "write it to "+h.node.name+" again")
	}
	return 0
}
