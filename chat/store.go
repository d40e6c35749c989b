package chat

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/meshfs/meshfs/internal/safetext"
	"github.com/meshfs/meshfs/mesh"
)

// MaxBytes is the longest chat message accepted from the local user.
const MaxBytes = 4 << 10

// record is one line of chat.jsonl.
type record struct {
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
			delete(s.holes, slices.Min(slices.Collect(maps.Keys(s.holes))))
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
	return slices.Min(slices.Collect(maps.Keys(s.holes))) - 1
}

// Store is the message store (chat.jsonl) and the rendered log
// (chat.log). Both are append-only and survive restarts.
type Store struct {
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

// Open opens (creating) both files in dir and loads the store.
func Open(dir string, history int) (*Store, error) {
	c := &Store{logPath: filepath.Join(dir, "chat.log"), history: history, senders: map[mesh.PeerID]*seenSeqs{}}
	var err error
	if c.store, err = openAppend(filepath.Join(dir, "chat.jsonl")); err != nil {
		return nil, err
	}
	if c.log, err = openAppend(c.logPath); err != nil {
		c.store.Close()
		return nil, err
	}
	if err := c.load(); err != nil {
		c.Close()
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
func (c *Store) load() error {
	if _, err := c.store.Seek(0, io.SeekStart); err != nil {
		return err
	}
	sc := bufio.NewScanner(c.store)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r record
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

func (c *Store) keepOwn(m mesh.Chat) {
	c.own = append(c.own, m)
	if len(c.own) > c.history {
		c.own = slices.Delete(c.own, 0, len(c.own)-c.history)
	}
}

func (c *Store) sender(id mesh.PeerID) *seenSeqs {
	s := c.senders[id]
	if s == nil {
		s = &seenSeqs{holes: map[uint64]bool{}}
		c.senders[id] = s
	}
	return s
}

// SetSelf records our own ID and display name.
func (c *Store) SetSelf(id mesh.PeerID, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.selfID, c.self = id, safetext.Text(name)
}

// AppendOwn stores and renders one line from the local user durably and
// returns it as sent. It rejects text over MaxBytes or not UTF-8; control
// characters and escape sequences are stripped, and a line with nothing
// left is not stored (ok is false).
func (c *Store) AppendOwn(text string) (m mesh.Chat, ok bool, err error) {
	if len(text) > MaxBytes {
		return m, false, fmt.Errorf("chat line of %d bytes: %w", len(text), ErrTooLong)
	}
	if !utf8.ValidString(text) {
		return m, false, ErrBadUTF8
	}
	if text = safetext.Text(text); text == "" {
		return m, false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m = mesh.Chat{Seq: c.ownSeq + 1, Time: time.Now(), Text: text}
	name := c.self
	if name == "" {
		name = "me"
	}
	if err := c.appendLocked(record{Self: true, Name: name, Seq: m.Seq, Time: m.Time, Text: text}); err != nil {
		return m, false, err
	}
	c.ownSeq = m.Seq
	c.keepOwn(m)
	return m, true, c.syncLocked()
}

// Receive stores and renders a message from a peer unless it is a
// duplicate. The caller syncs in batches.
func (c *Store) Receive(from mesh.PeerID, name string, m mesh.Chat) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if from == c.selfID || !c.sender(from).add(m.Seq, c.history) {
		return nil
	}
	text := safetext.Text(m.Text)
	if text == "" {
		return nil
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	return c.appendLocked(record{From: from.String(), Name: displayText(name, from), Seq: m.Seq, Time: m.Time, Text: text})
}

// displayText is a sanitised display name for the log.
func displayText(name string, id mesh.PeerID) string {
	if n := safetext.Text(name); n != "" {
		return n
	}
	return id.Short()
}

// appendLocked writes the record to the store and its line to the log.
func (c *Store) appendLocked(r record) error {
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

// Event renders an event line ("[time] * text") in the log only.
func (c *Store) Event(text string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dirty = true
	return c.render("* "+safetext.Text(text), time.Now())
}

// render appends one log line.
func (c *Store) render(line string, t time.Time) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "[%s] %s\n", t.Local().Format(time.DateTime), line)
	if _, err := c.log.Write(b.Bytes()); err != nil {
		return fmt.Errorf("append chat log: %w", err)
	}
	return nil
}

// Sync fsyncs both files if anything was appended since the last sync.
func (c *Store) Sync() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.syncLocked()
}

func (c *Store) syncLocked() error {
	if !c.dirty {
		return nil
	}
	c.dirty = false
	if err := c.store.Sync(); err != nil {
		return fmt.Errorf("sync chat store: %w", err)
	}
	return c.log.Sync()
}

// HaveFrom is what we hold of a sender's messages, for CHAT_HAVE.
func (c *Store) HaveFrom(id mesh.PeerID) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sender(id).contiguous()
}

// OwnAfter returns own messages with seq > seq, oldest first.
func (c *Store) OwnAfter(seq uint64) []mesh.Chat {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, _ := slices.BinarySearchFunc(c.own, seq+1, func(m mesh.Chat, s uint64) int {
		return cmp.Compare(m.Seq, s)
	})
	return slices.Clone(c.own[i:])
}

// Close syncs and closes both files.
func (c *Store) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.syncLocked()
	c.store.Close()
	c.log.Close()
	return err
}

// LastOwnSeq is the seq of our latest message.
func (c *Store) LastOwnSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ownSeq
}

// LogPath is the rendered chat log: what the chat file shows. It exists
// from Open on and only ever grows.
func (c *Store) LogPath() string { return c.logPath }
