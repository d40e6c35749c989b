package chat

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/meshfs/meshfs/internal/safetext"
	"github.com/meshfs/meshfs/mesh"
)

// MaxBytes is the longest chat message accepted from the local user.
const MaxBytes = 4 << 10

// record is one line of chat.jsonl: a message, an event line, or a mark.
type record struct {
	Self  bool      `json:"self,omitempty"`  // written by this node's user
	From  string    `json:"from,omitempty"`  // sender's full ID (others' messages)
	Event bool      `json:"event,omitempty"` // an event line ("* text"), no sender
	Mark  bool      `json:"mark,omitempty"`  // see repair.go; not rendered
	Skip  bool      `json:"skip,omitempty"`  // an own seq never used (reserve.go); not rendered
	Store int64     `json:"store,omitempty"` // mark: store offset the log covers
	Log   int64     `json:"log,omitempty"`   // mark: log size known durable
	Name  string    `json:"name,omitempty"`
	Seq   uint64    `json:"seq,omitempty"`
	Time  time.Time `json:"time,omitzero"`
	Text  string    `json:"text,omitempty"`
}

// line is the record as the log shows it ("" for a skip).
func (r record) line() string {
	if r.Skip {
		return ""
	}
	body := r.Name + ": " + r.Text
	if r.Event {
		body = "* " + r.Text
	}
	return fmt.Sprintf("[%s] %s\n", r.Time.Local().Format(time.DateTime), body)
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
// (chat.log). Both are append-only and survive restarts: see the package
// documentation for what is durable when.
type Store struct {
	logPath string
	history int
	// datasync makes the wal durable for the group commit: fdatasync;
	// tests count and delay it.
	datasync func(*os.File) error

	mu       sync.Mutex
	store    *os.File // immutable after Open, like log and wal
	log      *os.File
	wal      *os.File      // wal.go
	seqFile  *os.File      // chat.seq: own sequence numbers reserved (reserve.go)
	resMu    sync.Mutex    // serialises writes of chat.seq
	reserved atomic.Uint64 // own seqs up to this one may have been sent
	walOff   int64         // where the next own record goes in wal
	storeOff int64         // sizes of both files after everything written
	logOff   int64
	marked   int64 // logOff the last mark recorded, -1 if none yet
	selfID   mesh.PeerID
	self     string
	ownSeq   uint64
	own      []mesh.Chat // last `history` durable own messages, by seq, for catch-up
	senders  map[mesh.PeerID]*seenSeqs

	written atomic.Uint64 // own records written to the wal; rises under mu
	group   groupCommit
	syncMu  sync.Mutex // serialises Sync and Close
}

// Open opens (creating) the store, the log and the wal in dir, loads the
// store and brings it and the log up to date (wal.go, repair.go).
func Open(dir string, history int) (*Store, error) {
	c := &Store{logPath: filepath.Join(dir, "chat.log"), history: history, marked: -1,
		senders: map[mesh.PeerID]*seenSeqs{}, datasync: fdatasync}
	c.group.cond.L = &c.group.mu
	var err error
	if c.store, c.storeOff, err = openAppend(filepath.Join(dir, "chat.jsonl")); err != nil {
		return nil, err
	}
	if c.log, c.logOff, err = openAppend(c.logPath); err != nil {
		c.store.Close()
		return nil, err
	}
	if c.wal, err = openWAL(filepath.Join(dir, "chat.wal")); err != nil {
		c.store.Close()
		c.log.Close()
		return nil, err
	}
	var reserved uint64
	if c.seqFile, reserved, err = openReservation(filepath.Join(dir, "chat.seq")); err != nil {
		c.store.Close()
		c.log.Close()
		c.wal.Close()
		return nil, err
	}
	c.reserved.Store(reserved)
	if err := c.openLoad(); err != nil {
		c.closeFiles()
		return nil, err
	}
	return c, nil
}

// openLoad loads the store, takes back from the wal the own lines it lost,
// repairs the log and makes it all durable (with a fresh mark when
// anything changed), after which the wal may be overwritten from its start.
func (c *Store) openLoad() error {
	mark, err := c.load()
	if err == nil {
		err = c.replayWAL()
	}
	if err == nil {
		err = c.skipReserved()
	}
	if err == nil {
		err = c.repair(mark)
	}
	if err == nil {
		err = c.Sync()
	}
	return err
}

// openAppend opens a file for appending, ends a torn last line and returns
// the file's size.
func openAppend(path string) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", path, err)
	}
	fi, err := f.Stat()
	size := int64(0)
	if err == nil && fi.Size() > 0 {
		size = fi.Size()
		last := make([]byte, 1)
		if _, err = f.ReadAt(last, size-1); err == nil && last[0] != '\n' {
			_, err = f.Write([]byte("\n"))
			size++
		}
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open %s: %w", path, err)
	}
	return f, size, nil
}

// load replays chat.jsonl to learn own seqs and who sent what, and returns
// the last mark (nil if there is none).
func (c *Store) load() (*record, error) {
	var mark *record
	err := c.scan(0, func(r record) {
		switch {
		case r.Mark:
			mark = &r
		case r.Self:
			c.ownSeq = max(c.ownSeq, r.Seq)
			c.keepOwn(mesh.Chat{Seq: r.Seq, Time: r.Time, Text: r.Text})
		case r.From != "":
			if id, err := mesh.ParsePeerID(r.From); err == nil {
				c.sender(id).add(r.Seq, c.history)
			}
		}
	})
	return mark, err
}

// scan calls f with every record of the store from byte offset off on;
// lines that do not parse (a torn write) are skipped.
func (c *Store) scan(off int64, f func(record)) error {
	sc := bufio.NewScanner(io.NewSectionReader(c.store, off, c.storeOff-off))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r record
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			f(r)
		}
	}
	return sc.Err()
}

// keepOwn adds a durable own message to the catch-up window. Concurrent
// writers may get here out of order, so it inserts by seq.
func (c *Store) keepOwn(m mesh.Chat) {
	i, _ := slices.BinarySearchFunc(c.own, m.Seq, func(o mesh.Chat, s uint64) int {
		return cmp.Compare(o.Seq, s)
	})
	c.own = slices.Insert(c.own, i, m)
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

// AppendOwn is Stage, returning once the line is on disk.
func (c *Store) AppendOwn(text string) (mesh.Chat, bool, error) {
	m, ok, durable, err := c.Stage(text)
	if ok && err == nil {
		err = durable()
	}
	return m, ok && err == nil, err
}

// Stage stores and renders one line from the local user and returns it
// with its sequence number, and durable, which returns once the line is on
// disk: one fsync of the write-ahead file, shared with every writer
// meanwhile (commit.go). The line may be sent before durable returns: its
// sequence number is reserved on disk first (reserve.go), so a crash that
// loses the line never gives its number to another. A writer acknowledges
// the line only after durable. It rejects text over MaxBytes or not UTF-8;
// control characters and escape sequences are stripped, and a line with
// nothing left is not stored (ok is false).
func (c *Store) Stage(text string) (m mesh.Chat, ok bool, durable func() error, err error) {
	if len(text) > MaxBytes {
		return m, false, nil, fmt.Errorf("chat line of %d bytes: %w", len(text), ErrTooLong)
	}
	if !utf8.ValidString(text) {
		return m, false, nil, ErrBadUTF8
	}
	if text = safetext.Text(text); text == "" {
		return m, false, nil, nil
	}
	c.mu.Lock()
	m = mesh.Chat{Seq: c.ownSeq + 1, Time: time.Now(), Text: text}
	name := c.self
	if name == "" {
		name = "me"
	}
	var n uint64
	err = c.reserveLocked(m.Seq)
	if err == nil {
		var data []byte
		data, err = c.appendLocked(record{Self: true, Name: name, Seq: m.Seq, Time: m.Time, Text: text})
		if err == nil {
			c.ownSeq = m.Seq
			n, err = c.walAppendLocked(data)
		}
	}
	if err == nil {
		// Catch-up may send it from now on, like the live broadcast: a
		// peer that connects while the line waits for the disk must get it
		// one way or the other. Its number is reserved, so a crash that
		// loses it here cannot reuse it.
		c.keepOwn(m)
	}
	c.mu.Unlock()
	if err != nil {
		return m, false, nil, err
	}
	return m, true, func() error {
		if err := c.waitDurable(n); err != nil {
			return err
		}
		return c.extendReservation(m.Seq)
	}, nil
}

// Receive stores and renders a message from a peer unless it is a
// duplicate. It does not wait for the disk: a received line lost in a
// crash is asked for again by catch-up, since HaveFrom is rebuilt from the
// store.
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
	_, err := c.appendLocked(record{From: from.String(), Name: displayText(name, from), Seq: m.Seq, Time: m.Time, Text: text})
	return err
}

// displayText is a sanitised display name for the log.
func displayText(name string, id mesh.PeerID) string {
	if n := safetext.Text(name); n != "" {
		return n
	}
	return id.Short()
}

// appendLocked writes the record to the store and, unless it is a mark,
// its line to the log. It returns the record as written to the store.
func (c *Store) appendLocked(r record) ([]byte, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	data = append(data, '\n')
	n, err := c.store.Write(data)
	c.storeOff += int64(n)
	if err != nil {
		return nil, fmt.Errorf("append chat store: %w", err)
	}
	if r.Mark {
		return data, nil
	}
	n, err = c.log.WriteString(r.line())
	c.logOff += int64(n)
	if err != nil {
		return nil, fmt.Errorf("append chat log: %w", err)
	}
	return data, nil
}

// Event stores and renders an event line ("[time] * text").
func (c *Store) Event(text string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.appendLocked(record{Event: true, Time: time.Now(), Text: safetext.Text(text)})
	return err
}

// Sync makes everything appended so far durable in the store and the log
// (the wal's lines included), then appends a mark recording how much of
// the log is known to be on disk, which is where Open repairs from.
func (c *Store) Sync() error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	return c.syncAll()
}

func (c *Store) syncAll() error {
	c.mu.Lock()
	storeOff, logOff, marked := c.storeOff, c.logOff, c.marked
	c.mu.Unlock()
	if err := c.store.Sync(); err != nil {
		return fmt.Errorf("sync chat store: %w", err)
	}
	if logOff == marked {
		return nil
	}
	if err := c.log.Sync(); err != nil {
		return fmt.Errorf("sync chat log: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.appendLocked(record{Mark: true, Store: storeOff, Log: logOff}); err != nil {
		return err
	}
	c.marked = logOff
	return nil
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

// Close syncs (the last mark too) and closes both files.
func (c *Store) Close() error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	err := c.syncAll()
	if err == nil {
		err = c.store.Sync() // the last mark
	}
	if err == nil {
		c.mu.Lock()
		err = c.reserveThrough(c.ownSeq) // all used: nothing to skip at the next open
		c.mu.Unlock()
	}
	c.closeFiles()
	return err
}

func (c *Store) closeFiles() {
	c.store.Close()
	c.log.Close()
	c.wal.Close()
	c.seqFile.Close()
}

// LastOwnSeq is the seq of our latest message.
func (c *Store) LastOwnSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ownSeq
}

// LogPath is the rendered chat log: what the chat file shows. It exists
// from Open on and only ever grows, except that Open may cut a tail a crash
// left unfinished and write it again from the store.
func (c *Store) LogPath() string { return c.logPath }
