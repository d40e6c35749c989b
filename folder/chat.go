package folder

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"

	"github.com/meshfs/meshfs/internal/atomicfile"
)

// chatFile is one conversation file, Dir/chat or Dir/dm/<name>, and the
// chat loop's state for it. That goroutine alone reads and writes the
// file, so a user's line and an incoming message can never interleave
// into a lost or doubled line. Chat and every dm file share this code, so
// they detect, send and rewrite alike.
//
// Our own rewrites need no event suppression: every check compares the
// file with seen, and a file we wrote equals seen, so it is a no-op.
type chatFile struct {
	// Immutable after newChatFile.
	path    string             // the file in the tree
	logPath string             // the engine's append-only log the file is kept equal to
	say     func(string) error // sends one line the user wrote
	log     *slog.Logger       // carries the file's name in the tree

	// Owned by the chat loop.
	seen    []byte    // what the current file holds that is not new user input
	busy    bool      // the file was open for writing at the last check
	orphans []*orphan // replaced files a writer may still append to
	gone    bool      // say found the member gone: the file is left as the user's
}

// newChatFile returns the state of a conversation file not yet started.
// name is the file's path relative to Dir, for logs.
func newChatFile(log *slog.Logger, path, logPath, name string, say func(string) error) *chatFile {
	return &chatFile{path: path, logPath: logPath, say: say, log: log.With("file", name)}
}

// orphan is a conversation file we renamed over while a process could
// still write into it (a `>>` that opened it just before): its new bytes
// are still the user's lines.
type orphan struct {
	file *os.File
	id   fileID
	seen []byte
}

// polled says whether the chat loop must check the file again without an
// event: while a replaced file may still be written to, or, without a
// close watcher, while a writer holds the file.
func (c *chatFile) polled() bool {
	return len(c.orphans) > 0 || c.busy && !seesCloses
}

// start sets seen from the file left by an earlier run, then syncs.
func (c *chatFile) start() {
	cur, _ := os.ReadFile(c.path)
	log, _ := c.readLog()
	c.seen = chatStartSeen(cur, log)
	c.reconcile()
}

// readLog reads the engine's chat log; a log not yet written is empty.
func readLog(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// readLog reads the engine's log of this conversation; a failure is
// logged, as the next change reads it again.
func (c *chatFile) readLog() ([]byte, error) {
	log, err := readLog(c.logPath)
	if err != nil {
		c.log.Warn("chat log unreadable", "err", err, "fix", "nothing: read again at the next change; if it repeats, check permissions of the state folder (--state)")
	}
	return log, err
}

// reconcile takes new user lines from the orphans and from the file, says
// them, and rewrites the file as the log if it differs.
func (c *chatFile) reconcile() {
	c.pollOrphans()
	if c.gone {
		return
	}
	file, cur, id, err := openChat(c.path)
	if err != nil {
		c.log.Warn("chat file unreadable", "err", err, "fix", "check the permissions of this file in the folder")
		return
	}
	c.busy = file != nil && mayCutLine(c.seen, cur) && openForWriting([]writeTarget{{Path: c.path, ID: id}})[id]
	lines, taken := chatTake(c.seen, cur, c.busy)
	c.sayLines(lines)
	c.seen = taken
	if c.gone {
		// Not rewritten: the lines not sent stay in the user's file.
		closeQuietly(file)
		return
	}
	log, err := c.readLog()
	if err != nil || (file != nil && bytes.Equal(cur, log)) {
		closeQuietly(file)
		return
	}
	if !renameOverOpen {
		closeQuietly(file)
		file = nil
	}
	if err := atomicfile.Write(c.path, log, 0o600); err != nil {
		c.log.Warn("chat file not rewritten", "err", err, "fix", "check free space and permissions of the folder; retried at the next change")
		closeQuietly(file)
		return
	}
	c.seen, c.busy = log, false
	if file != nil {
		// A writer may have opened the old file just before the rename.
		o := &orphan{file: file, id: id, seen: taken}
		if c.pollOrphan(o) {
			c.orphans = append(c.orphans, o)
		}
	}
}

// openChat opens the chat file and reads it; a missing file gives
// no error and a nil file.
func openChat(path string) (*os.File, []byte, fileID, error) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fileID{}, nil
	}
	if err != nil {
		return nil, nil, fileID{}, err
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, nil, fileID{}, err
	}
	id, _ := idOf(fi)
	cur, err := io.ReadAll(file)
	if err != nil {
		file.Close()
		return nil, nil, fileID{}, err
	}
	return file, cur, id, nil
}

// pollOrphans checks every orphan, dropping those no process writes to.
func (c *chatFile) pollOrphans() {
	kept := c.orphans[:0]
	for _, o := range c.orphans {
		if c.pollOrphan(o) {
			kept = append(kept, o)
		}
	}
	clear(c.orphans[len(kept):])
	c.orphans = kept
}

// pollOrphan says the lines added to an orphan and reports whether to keep
// watching it. Writers are checked before reading, so when there are none
// what was read is final.
func (c *chatFile) pollOrphan(o *orphan) (keep bool) {
	// The path now names the new chat file, so match by inode only.
	busy := openForWriting([]writeTarget{{ID: o.id}})[o.id]
	cur, err := io.ReadAll(io.NewSectionReader(o.file, 0, 1<<62))
	if err != nil {
		c.log.Warn("replaced chat file unreadable; lines written to it may be lost", "err", err, "fix", "write them to the file again")
		busy = false
	}
	lines, taken := chatTake(o.seen, cur, busy)
	c.sayLines(lines)
	o.seen = taken
	if !busy {
		closeQuietly(o.file)
	}
	return busy
}

// sayLines sends each line. A line the engine refuses is logged and
// dropped. A dm file whose member the engine no longer knows is marked
// gone, so its lines stay in the file and the chat loop stops sending.
func (c *chatFile) sayLines(lines []string) {
	for _, line := range lines {
		err := c.say(line)
		switch {
		case err == nil:
		case errors.Is(err, errMemberGone):
			c.gone = true
			c.log.Warn("private line not sent: no longer a member", "err", err, "fix", "nothing: the member was removed (see the peers file); the line stays in the file")
		default:
			c.log.Warn("chat line not sent", "err", err, "fix", "write plain text lines of at most 4 KiB")
		}
	}
}

// closeOrphans closes the files of all orphans.
func (c *chatFile) closeOrphans() {
	for _, o := range c.orphans {
		closeQuietly(o.file)
	}
	c.orphans = nil
}

// closeQuietly closes a read-only file; nil is fine.
func closeQuietly(file *os.File) {
	if file != nil {
		file.Close() // read-only: nothing to lose
	}
}
