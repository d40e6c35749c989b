package sync

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// plainChat is the chat loop's state. That goroutine alone reads and
// writes Dir/chat, so a user's line and an incoming message can never
// interleave into a lost or doubled line.
//
// Our own rewrites need no event suppression: every check compares the
// file with seen, and a file we wrote equals seen, so it is a no-op.
type plainChat struct {
	f       *Folder
	tmp     string
	seen    []byte         // what the current Dir/chat holds that is not new user input
	busy    bool           // Dir/chat was open for writing at the last check
	orphans []*plainOrphan // replaced chat files a writer may still append to
}

// plainOrphan is a chat file we renamed over while a process could still
// write into it (a `>>` that opened it just before): its new bytes are
// still the user's lines.
type plainOrphan struct {
	file *os.File
	id   watchFileID
	seen []byte
}

// plainChatLoop owns Dir/chat: it takes the user's new lines to Say, and
// rewrites the file as the engine's log after each change on either side.
// It checks again every Debounce while a writer holds a chat file, and
// every PeersRefresh in case an event was lost.
func (f *Folder) plainChatLoop(ctx context.Context, in <-chan watchEvent) {
	c := &plainChat{f: f, tmp: filepath.Join(f.dir, ".chat.meshfs-tmp")}
	defer c.closeOrphans()
	c.start()
	poll := time.NewTicker(f.cfg.Debounce)
	defer poll.Stop()
	check := time.NewTicker(f.cfg.PeersRefresh)
	defer check.Stop()
	for {
		select {
		case _, ok := <-in:
			if !ok {
				return
			}
			c.sync()
		case <-poll.C:
			if c.busy || len(c.orphans) > 0 {
				c.sync()
			}
		case <-check.C:
			c.sync()
		case <-ctx.Done():
			return
		}
	}
}

// start sets seen from the file left by an earlier run, then syncs.
func (c *plainChat) start() {
	cur, _ := os.ReadFile(c.f.chat)
	log, err := plainReadLog(c.f.chatLog)
	if err != nil {
		c.f.log.Warn("read chat log", "err", err)
	}
	c.seen = plainChatStartSeen(cur, log)
	c.sync()
}

// plainReadLog reads the engine's chat log; a log not yet written is empty.
func plainReadLog(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// sync takes new user lines from the orphans and from Dir/chat, says them,
// and rewrites Dir/chat as the log if it differs.
func (c *plainChat) sync() {
	c.pollOrphans()
	file, cur, id, err := plainOpenChat(c.f.chat)
	if err != nil {
		c.f.log.Warn("read chat file", "err", err)
		return
	}
	c.busy = file != nil && watchWriters([]watchTarget{{Path: c.f.chat, ID: id}})[id]
	lines, taken := plainChatTake(c.seen, cur, c.busy)
	c.say(lines)
	c.seen = taken
	log, err := plainReadLog(c.f.chatLog)
	if err != nil {
		c.f.log.Warn("read chat log", "err", err)
	}
	if err != nil || (file != nil && bytes.Equal(cur, log)) {
		plainClose(file)
		return
	}
	if err := plainWriteAtomic(c.f.chat, c.tmp, log, 0o600); err != nil {
		c.f.log.Warn("rewrite chat file", "err", err)
		plainClose(file)
		return
	}
	c.seen, c.busy = log, false
	if file != nil {
		// A writer may have opened the old file just before the rename.
		o := &plainOrphan{file: file, id: id, seen: taken}
		if c.pollOrphan(o) {
			c.orphans = append(c.orphans, o)
		}
	}
}

// plainOpenChat opens the chat file and reads it; a missing file gives
// no error and a nil file.
func plainOpenChat(path string) (*os.File, []byte, watchFileID, error) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, watchFileID{}, nil
	}
	if err != nil {
		return nil, nil, watchFileID{}, err
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, nil, watchFileID{}, err
	}
	id, _ := watchIDOf(fi)
	cur, err := io.ReadAll(file)
	if err != nil {
		file.Close()
		return nil, nil, watchFileID{}, err
	}
	return file, cur, id, nil
}

// pollOrphans checks every orphan, dropping those no process writes to.
func (c *plainChat) pollOrphans() {
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
func (c *plainChat) pollOrphan(o *plainOrphan) (keep bool) {
	// The path now names the new chat file, so match by inode only.
	busy := watchWriters([]watchTarget{{ID: o.id}})[o.id]
	cur, err := io.ReadAll(io.NewSectionReader(o.file, 0, 1<<62))
	if err != nil {
		c.f.log.Warn("read replaced chat file", "err", err)
		busy = false
	}
	lines, taken := plainChatTake(o.seen, cur, busy)
	c.say(lines)
	o.seen = taken
	if !busy {
		plainClose(o.file)
	}
	return busy
}

// say sends each line. A line the engine refuses is logged and dropped.
func (c *plainChat) say(lines []string) {
	for _, line := range lines {
		if err := c.f.cfg.Syncer.Say(line); err != nil {
			c.f.log.Warn("say chat line", "err", err)
		}
	}
}

// closeOrphans closes the files of all orphans.
func (c *plainChat) closeOrphans() {
	for _, o := range c.orphans {
		plainClose(o.file)
	}
	c.orphans = nil
}

// plainClose closes a read-only file; nil is fine.
func plainClose(file *os.File) {
	if file != nil {
		file.Close() // read-only: nothing to lose
	}
}
