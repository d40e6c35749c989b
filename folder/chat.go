package folder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
)

// chatFile is the chat loop's state. That goroutine alone reads and
// writes Dir/chat, so a user's line and an incoming message can never
// interleave into a lost or doubled line.
//
// Our own rewrites need no event suppression: every check compares the
// file with seen, and a file we wrote equals seen, so it is a no-op.
type chatFile struct {
	f       *Tree
	seen    []byte    // what the current Dir/chat holds that is not new user input
	busy    bool      // Dir/chat was open for writing at the last check
	orphans []*orphan // replaced chat files a writer may still append to
}

// orphan is a chat file we renamed over while a process could still
// write into it (a `>>` that opened it just before): its new bytes are
// still the user's lines.
type orphan struct {
	file *os.File
	id   fileID
	seen []byte
}

// chatLoop owns Dir/chat: it takes the user's new lines to Say, and
// rewrites the file as the engine's log after each change on either side.
// Changes and closes after writing (Linux) arrive as events; a timer runs
// only while a writer holds a file no event covers: every Debounce while
// a replaced chat file may still be written to, or, without a close
// watcher, while a writer holds Dir/chat.
func (f *Tree) chatLoop(ctx context.Context, in <-chan event) {
	c := &chatFile{f: f}
	defer c.closeOrphans()
	c.start()
	poll := time.NewTimer(f.cfg.Debounce)
	defer poll.Stop()
	for {
		poll.Reset(f.cfg.Debounce)
		if !c.polled() {
			poll.Stop()
		}
		select {
		case _, ok := <-in:
			if !ok {
				return
			}
			c.reconcile()
		case <-poll.C:
			c.reconcile()
		case <-ctx.Done():
			return
		}
	}
}

// polled says whether the chat loop must check again without an event.
func (c *chatFile) polled() bool {
	return len(c.orphans) > 0 || c.busy && !seesCloses
}

// start sets seen from the file left by an earlier run, then syncs.
func (c *chatFile) start() {
	cur, _ := os.ReadFile(c.f.chat)
	log, err := readLog(c.f.chatLog)
	if err != nil {
		c.f.log.Warn("chat log unreadable", "err", err, "fix", "nothing: read again at the next change; if it repeats, check permissions of the state folder (--state)")
	}
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

// reconcile takes new user lines from the orphans and from Dir/chat, says them,
// and rewrites Dir/chat as the log if it differs.
func (c *chatFile) reconcile() {
	c.pollOrphans()
	file, cur, id, err := openChat(c.f.chat)
	if err != nil {
		c.f.log.Warn("chat file unreadable", "err", err, "fix", "check the permissions of chat in the folder")
		return
	}
	c.busy = file != nil && openForWriting([]writeTarget{{Path: c.f.chat, ID: id}})[id]
	lines, taken := chatTake(c.seen, cur, c.busy)
	c.say(lines)
	c.seen = taken
	log, err := readLog(c.f.chatLog)
	if err != nil {
		c.f.log.Warn("chat log unreadable", "err", err, "fix", "nothing: read again at the next change; if it repeats, check permissions of the state folder (--state)")
	}
	if err != nil || (file != nil && bytes.Equal(cur, log)) {
		closeQuietly(file)
		return
	}
	if !renameOverOpen {
		closeQuietly(file)
		file = nil
	}
	if err := atomicfile.Write(c.f.chat, log, 0o600); err != nil {
		c.f.log.Warn("chat file not rewritten", "err", err, "fix", "check free space and permissions of the folder; retried at the next change")
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
		c.f.log.Warn("replaced chat file unreadable; lines written to it may be lost", "err", err, "fix", "write them to chat again")
		busy = false
	}
	lines, taken := chatTake(o.seen, cur, busy)
	c.say(lines)
	o.seen = taken
	if !busy {
		closeQuietly(o.file)
	}
	return busy
}

// say sends each line. A line the engine refuses is logged and dropped.
func (c *chatFile) say(lines []string) {
	for _, line := range lines {
		if err := c.f.cfg.Syncer.Say(line); err != nil {
			c.f.log.Warn("chat line not sent", "err", err, "fix", "write plain text lines of at most 4 KiB")
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
