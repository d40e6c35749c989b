package chat

import (
	"bufio"
	"crypto"
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
	"github.com/meshfs/meshfs/record"
)

// MaxBytes is the longest chat message accepted from the local user.
const MaxBytes = 4 << 10

// record is one line of chat.jsonl: a message, an event line, or a mark.
type entry struct {
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
	// Lamport and Sig make a message a signed record (package record)
	// that can be passed on to members who lack it. An own message keeps
	// no signature: it is signed again, to the same bytes, when sent.
	// Messages stored before records existed have neither.
	Lamport uint64 `json:"lamport,omitempty"`
	Sig     []byte `json:"sig,omitempty"`
	// To and Sealed make a message a private line (record.Chat.To and
	// Sealed): its text is only in Sealed, and the room's log never
	// shows it. Text stays empty.
	To     string `json:"to,omitempty"`
	Sealed []byte `json:"sealed,omitempty"`
}

// line is the record as the log shows it ("" for a skip or a private line).
func (r entry) line() string {
	if r.Skip || r.To != "" {
		return ""
	}
	body := r.Name + ": " + r.Text
	if r.Event {
		body = "* " + r.Text
	}
	return fmt.Sprintf("[%s] %s\n", r.Time.Local().Format(time.DateTime), body)
}

// seenSeqs tracks which of one sender's messages we hold: everything up to
// highest except the holes (messages skipped when a later one arrived
// first, which only stores from before records can hold: records are taken
// in order).
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
	walOff   int64         // where the next own entry goes in wal
	storeOff int64         // sizes of both files after everything written
	logOff   int64
	marked   int64 // logOff the last mark recorded, -1 if none yet
	selfID   mesh.PeerID
	self     string
	signer   crypto.Signer // signs own records; nil until SetSelf
	ownSeq   uint64
	lamport  uint64                   // the highest Lamport clock stored: an own line gets the next
	index    map[mesh.PeerID][]stored // where each author's records are in the store (records.go)
	senders  map[mesh.PeerID]*seenSeqs

	lastOwnData []byte // the store line of the own entry stageLocked wrote last

	written atomic.Uint64 // own records written to the wal; rises under mu
	group   groupCommit
	syncMu  sync.Mutex // serialises Sync and Close
}

// Open opens (creating) the store, the log and the wal in dir, loads the
// store and brings it and the log up to date (wal.go, repair.go).
func Open(dir string) (*Store, error) {
	c := &Store{logPath: filepath.Join(dir, "chat.log"), marked: -1,
		senders: map[mesh.PeerID]*seenSeqs{}, index: map[mesh.PeerID][]stored{}, datasync: fdatasync}
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

// load replays chat.jsonl to learn own seqs and who sent what, and where
// each record is, and returns the last mark (nil if there is none).
func (c *Store) load() (*entry, error) {
	var mark *entry
	err := c.scan(0, func(r entry, off int64) {
		switch {
		case r.Mark:
			mark = &r
		case r.Self:
			c.ownSeq = max(c.ownSeq, r.Seq)
			c.indexLocked(c.selfID, r, off)
		case r.From != "":
			if id, err := mesh.ParsePeerID(r.From); err == nil {
				c.sender(id).add(r.Seq, maxHoles)
				c.indexLocked(id, r, off)
			}
		}
	})
	return mark, err
}

// scan calls f with every record of the store from byte offset off on, and
// the record's offset; lines that do not parse (a torn write) are skipped.
func (c *Store) scan(off int64, f func(r entry, off int64)) error {
	sc := bufio.NewScanner(io.NewSectionReader(c.store, off, c.storeOff-off))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r entry
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			f(r, off)
		}
		off += int64(len(sc.Bytes())) + 1
	}
	return sc.Err()
}

func (c *Store) sender(id mesh.PeerID) *seenSeqs {
	s := c.senders[id]
	if s == nil {
		s = &seenSeqs{holes: map[uint64]bool{}}
		c.senders[id] = s
	}
	return s
}

// SetSelf records our own ID, display name and the key own records are
// signed with. Records of ours loaded before it are re-indexed under id.
func (c *Store) SetSelf(id mesh.PeerID, name string, signer crypto.Signer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if own, ok := c.index[c.selfID]; ok && id != c.selfID {
		delete(c.index, c.selfID)
		c.index[id] = own
	}
	c.selfID, c.self, c.signer = id, safetext.Text(name), signer
}

// SelfName is the name own lines are shown under ("me" before SetSelf).
func (c *Store) SelfName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.self == "" {
		return "me"
	}
	return c.self
}

// AppendOwn is Stage, returning once the line is on disk.
func (c *Store) AppendOwn(text string) (record.Chat, bool, error) {
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
func (c *Store) Stage(text string) (m record.Chat, ok bool, durable func() error, err error) {
	return c.stage(text, mesh.PeerID{}, nil)
}

// Sealer seals the text of the private line m (Author, Seq and To set) to
// its recipient and its author.
type Sealer func(m record.Chat, text string) ([]byte, error)

// StageTo is Stage for a private line to the member to: the text, checked
// and cleaned as Stage does, is stored and sent only as seal made it. The
// returned record's Text is empty; the cleaned text is returned beside it,
// for the caller's rendering of the conversation.
func (c *Store) StageTo(to mesh.PeerID, text string, seal Sealer) (m record.Chat, clean string, ok bool, durable func() error, err error) {
	m, ok, durable, err = c.stage(text, to, seal)
	return m, safetext.Text(text), ok, durable, err
}

// stage is Stage and StageTo: a room line when seal is nil.
func (c *Store) stage(text string, to mesh.PeerID, seal Sealer) (m record.Chat, ok bool, durable func() error, err error) {
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
	m, err = c.stageLocked(text, to, seal)
	var n uint64
	if err == nil {
		n, err = c.walAppendLocked(c.lastOwnData)
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

// displayText is a sanitised display name for the log.
func displayText(name string, id mesh.PeerID) string {
	if n := safetext.Text(name); n != "" {
		return n
	}
	return id.Short()
}

// appendLocked writes the record to the store and, unless it is a mark,
// its line to the log. It returns the record as written to the store, and
// where it starts there.
func (c *Store) appendLocked(r entry) ([]byte, int64, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, 0, err
	}
	data = append(data, '\n')
	off := c.storeOff
	n, err := c.store.Write(data)
	c.storeOff += int64(n)
	if err != nil {
		return nil, 0, fmt.Errorf("append chat store: %w", err)
	}
	if r.Mark {
		return data, off, nil
	}
	n, err = c.log.WriteString(r.line())
	c.logOff += int64(n)
	if err != nil {
		return nil, 0, fmt.Errorf("append chat log: %w", err)
	}
	return data, off, nil
}

// Event stores and renders an event line ("[time] * text").
func (c *Store) Event(text string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, _, err := c.appendLocked(entry{Event: true, Time: time.Now(), Text: safetext.Text(text)})
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
	if _, _, err := c.appendLocked(entry{Mark: true, Store: storeOff, Log: logOff}); err != nil {
		return err
	}
	c.marked = logOff
	return nil
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

// LogPath is the rendered chat log: what the chat file shows. It exists
// from Open on and only ever grows, except that Open may cut a tail a crash
// left unfinished and write it again from the store.
func (c *Store) LogPath() string { return c.logPath }
