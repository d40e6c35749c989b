package sync

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/meshfs/meshfs/mesh"
)

// maxChatBytes is the longest chat message accepted from the local user.
const maxChatBytes = 4 << 10

// chatRecord is one line of chat.jsonl.
type chatRecord struct {
	Self bool      `json:"self,omitempty"` // written by this node's user
	From string    `json:"from,omitempty"` // sender's full ID (others' messages)
	Name string    `json:"name"`
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

// seenSeqs tracks which of one sender's messages we hold: everything up to
// highest except the holes (messages skipped when a later one arrived first).
type seenSeqs struct {
	highest uint64
	holes   map[uint64]bool
}

// add reports whether seq is new and records it. Seq 0 is unordered and
// always new.
func (s *seenSeqs) add(seq uint64, maxHoles int) bool {
	switch {
	case seq == 0:
		return true
	case seq > s.highest:
		for h := max(s.highest+1, seq-min(seq, uint64(maxHoles))); h < seq; h++ {
			s.holes[h] = true
		}
		s.highest = seq
		for len(s.holes) > maxHoles {
			delete(s.holes, slices.Min(mapKeys(s.holes)))
		}
		return true
	case s.holes[seq]:
		delete(s.holes, seq)
		return true
	}
	return false
}

// contiguous is the highest seq below which we hold every message: what a
// catch-up request asks after.
func (s *seenSeqs) contiguous() uint64 {
	if len(s.holes) == 0 {
		return s.highest
	}
	return slices.Min(mapKeys(s.holes)) - 1
}

func mapKeys(m map[uint64]bool) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// chatStore is the message store (chat.jsonl) and the rendered log
// (chat.log). Both are append-only and survive restarts.
type chatStore struct {
	logPath string
	history int

	mu      sync.Mutex
	store   *os.File
	log     *os.File
	selfID  mesh.PeerID
	self    string
	ownSeq  uint64
	own     []mesh.Chat // last `history` own messages, for catch-up
	senders map[mesh.PeerID]*seenSeqs
	dirty   bool
}

// openChatStore opens (creating) both files in dir and loads the store.
func openChatStore(dir string, history int) (*chatStore, error) {
	c := &chatStore{logPath: filepath.Join(dir, "chat.log"), history: history, senders: map[mesh.PeerID]*seenSeqs{}}
	var err error
	if c.store, err = openAppend(filepath.Join(dir, "chat.jsonl")); err != nil {
		return nil, err
	}
	if c.log, err = openAppend(c.logPath); err != nil {
		c.store.Close()
		return nil, err
	}
	if err := c.load(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// openAppend opens a file for appending and ends a torn last line.
func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err = f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			_, err = f.Write([]byte("\n"))
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

// load replays chat.jsonl to learn own seqs and who sent what.
func (c *chatStore) load() error {
	if _, err := c.store.Seek(0, io.SeekStart); err != nil {
		return err
	}
	sc := bufio.NewScanner(c.store)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r chatRecord
		if json.Unmarshal(sc.Bytes(), &r) != nil {
			continue
		}
		if r.Self {
			c.ownSeq = max(c.ownSeq, r.Seq)
			c.keepOwn(mesh.Chat{Seq: r.Seq, Time: r.Time, Text: r.Text})
		} else if id, err := mesh.ParsePeerID(r.From); err == nil {
			c.sender(id).add(r.Seq, c.history)
		}
	}
	return sc.Err()
}

func (c *chatStore) keepOwn(m mesh.Chat) {
	c.own = append(c.own, m)
	if len(c.own) > c.history {
		c.own = slices.Delete(c.own, 0, len(c.own)-c.history)
	}
}

func (c *chatStore) sender(id mesh.PeerID) *seenSeqs {
	s := c.senders[id]
	if s == nil {
		s = &seenSeqs{holes: map[uint64]bool{}}
		c.senders[id] = s
	}
	return s
}

// setSelf records our own ID and display name.
func (c *chatStore) setSelf(id mesh.PeerID, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.selfID, c.self = id, sanitizeName(name)
}

// appendOwn stores and renders one own message durably and returns it.
func (c *chatStore) appendOwn(text string) (mesh.Chat, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := mesh.Chat{Seq: c.ownSeq + 1, Time: time.Now(), Text: text}
	name := c.self
	if name == "" {
		name = "me"
	}
	if err := c.appendLocked(chatRecord{Self: true, Name: name, Seq: m.Seq, Time: m.Time, Text: text}); err != nil {
		return m, err
	}
	c.ownSeq = m.Seq
	c.keepOwn(m)
	return m, c.syncLocked()
}

// receive stores and renders a message from a peer unless it is a
// duplicate. The caller syncs in batches.
func (c *chatStore) receive(from mesh.PeerID, name string, m mesh.Chat) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if from == c.selfID || !c.sender(from).add(m.Seq, c.history) {
		return nil
	}
	text := sanitizeText(m.Text)
	if text == "" {
		return nil
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	return c.appendLocked(chatRecord{From: from.String(), Name: displayText(name, from), Seq: m.Seq, Time: m.Time, Text: text})
}

// displayText is a sanitised display name for the log.
func displayText(name string, id mesh.PeerID) string {
	if n := sanitizeText(name); n != "" {
		return n
	}
	return id.Short()
}

// appendLocked writes the record to the store and its line to the log.
func (c *chatStore) appendLocked(r chatRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := c.store.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("append chat store: %w", err)
	}
	c.dirty = true
	return c.render(fmt.Sprintf("%s: %s", r.Name, r.Text), r.Time)
}

// event renders an event line ("[time] * text") in the log only.
func (c *chatStore) event(text string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = true
	return c.render("* "+sanitizeText(text), time.Now())
}

// render appends one log line.
func (c *chatStore) render(line string, t time.Time) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "[%s] %s\n", t.Local().Format(time.DateTime), line)
	if _, err := c.log.Write(b.Bytes()); err != nil {
		return fmt.Errorf("append chat log: %w", err)
	}
	return nil
}

// sync fsyncs both files if anything was appended since the last sync.
func (c *chatStore) sync() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.syncLocked()
}

func (c *chatStore) syncLocked() error {
	if !c.dirty {
		return nil
	}
	c.dirty = false
	if err := c.store.Sync(); err != nil {
		return fmt.Errorf("sync chat store: %w", err)
	}
	return c.log.Sync()
}

// haveFrom is what we hold of a sender's messages, for CHAT_HAVE.
func (c *chatStore) haveFrom(id mesh.PeerID) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sender(id).contiguous()
}

// ownAfter returns own messages with seq > seq, oldest first.
func (c *chatStore) ownAfter(seq uint64) []mesh.Chat {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, _ := slices.BinarySearchFunc(c.own, seq+1, func(m mesh.Chat, s uint64) int {
		return cmpU64(m.Seq, s)
	})
	return slices.Clone(c.own[i:])
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (c *chatStore) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.syncLocked()
	c.store.Close()
	c.log.Close()
	return err
}

// chatJob is work for the chat loop: a received message, or an event line.
type chatJob struct {
	from  mesh.PeerID
	name  string
	chat  mesh.Chat
	event string
}

// ChatLogPath returns the rendered chat log (StateDir/chat.log). It exists
// from New on and only ever grows.
func (e *Engine) ChatLogPath() string { return e.chat.logPath }

// Say appends one line from the local user to the log and queues its
// broadcast. It rejects text over 4 KiB or not UTF-8; control characters
// and escape sequences are stripped; an empty result is ignored.
func (e *Engine) Say(text string) error {
	if len(text) > maxChatBytes {
		return fmt.Errorf("say: %d bytes: %w", len(text), ErrTooLong)
	}
	if !utf8.ValidString(text) {
		return fmt.Errorf("say: %w", ErrBadUTF8)
	}
	text = sanitizeText(text)
	if text == "" {
		return nil
	}
	m, err := e.chat.appendOwn(text)
	if err != nil {
		return fmt.Errorf("say: %w", err)
	}
	e.broadcast.push(chatItem{chat: m, all: true})
	return nil
}

// chatLoop stores received messages and event lines, fsyncing per batch.
func (e *Engine) chatLoop() {
	for {
		select {
		case <-e.ctx.Done():
			return
		case j := <-e.chatIn:
			e.chatDo(j)
			for more := true; more; {
				select {
				case j := <-e.chatIn:
					e.chatDo(j)
				default:
					more = false
				}
			}
			if err := e.chat.sync(); err != nil {
				e.log.Warn("chat not synced", "err", err)
			}
		}
	}
}

func (e *Engine) chatDo(j chatJob) {
	var err error
	if j.event != "" {
		err = e.chat.event(j.event)
	} else {
		err = e.chat.receive(j.from, j.name, j.chat)
	}
	if err != nil {
		e.log.Warn("chat not stored", "err", err)
	}
}

// lastOwnSeq is the seq of our latest message.
func (c *chatStore) lastOwnSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ownSeq
}
