package chat

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// Every message in the store is a record of its author (package record):
// a member passes on to others what they lack, whoever wrote it, so the
// store answers "what do you hold of each author" (Vector) and "give me
// author A's records after n" (After) from an index of where each record
// is in chat.jsonl. The index costs 16 bytes a message; the messages stay
// on disk.

// maxHoles bounds the numbers remembered as missing per author in a store
// from before records, when messages could arrive out of order.
const maxHoles = 1000

// stored is where one record of an author is in chat.jsonl.
type stored struct {
	seq uint64
	off int64
}

// Outcome says what Accept did with a record.
type Outcome int

const (
	// Added: the record was the author's next one; it is stored and shown.
	Added Outcome = iota
	// Duplicate: the store already holds this number of the author's.
	Duplicate
	// Gap: an earlier record of the author is missing; nothing was stored.
	// Records are taken in each author's order only.
	Gap
)

// indexLocked notes where the record r of author is, and its clock.
func (c *Store) indexLocked(author mesh.PeerID, r entry, off int64) {
	c.lamport = max(c.lamport, r.Lamport)
	list := c.index[author]
	i, found := slices.BinarySearchFunc(list, r.Seq, func(s stored, seq uint64) int {
		return int(min(max(int64(s.seq)-int64(seq), -1), 1))
	})
	if found {
		list[i].off = off // stored twice (a replayed wal line): the later copy
		return
	}
	c.index[author] = slices.Insert(list, i, stored{seq: r.Seq, off: off})
}

// stageLocked stores an own line as the next record, signed, and keeps its
// store line in lastOwnData for the wal. Catch-up may send it from now on,
// like the live broadcast: a peer that connects while the line waits for
// the disk must get it one way or the other. Its number is reserved, so a
// crash that loses it here cannot reuse it.
//
// A private line (seal not nil) is sealed before its number is reserved, so
// a sealing failure costs no number.
func (c *Store) stageLocked(text string, to mesh.PeerID, seal Sealer) (record.Chat, error) {
	m := record.Chat{Author: c.selfID, Seq: c.ownSeq + 1, Lamport: c.lamport + 1, Time: time.Now(), Text: text}
	name := c.self
	if name == "" {
		name = "me"
	}
	r := entry{Self: true, Name: name, Seq: m.Seq, Lamport: m.Lamport, Time: m.Time, Text: text}
	if seal != nil {
		m.To, m.Text = to, ""
		sealed, err := seal(m, text)
		if err != nil {
			return m, fmt.Errorf("seal private line: %w", err)
		}
		m.Sealed, r.To, r.Sealed, r.Text = sealed, to.String(), sealed, ""
	}
	if err := c.reserveLocked(m.Seq); err != nil {
		return m, err
	}
	data, off, err := c.appendLocked(r)
	if err != nil {
		return m, err
	}
	c.ownSeq, c.lastOwnData = m.Seq, data
	c.indexLocked(c.selfID, r, off)
	return m, c.signLocked(&m)
}

// signLocked signs an own record; without a signer (a store used on its
// own) it stays unsigned.
func (c *Store) signLocked(m *record.Chat) error {
	if c.signer == nil {
		return nil
	}
	if err := m.SignWith(c.signer); err != nil {
		return fmt.Errorf("sign chat line: %w", err)
	}
	return nil
}

// Accept stores and renders a record of another member if it is that
// author's next one. The caller has verified its signature; the name shown
// is the caller's (from the author's certificate), never the record's. It
// does not wait for the disk: a received record lost in a crash is asked
// for again, since Vector is rebuilt from the store.
func (c *Store) Accept(m record.Chat, name string) (Outcome, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.Author == c.selfID {
		return Duplicate, nil
	}
	s := c.sender(m.Author)
	switch {
	case m.Seq <= s.highest && !s.holes[m.Seq]:
		return Duplicate, nil
	case m.Seq > s.highest+1:
		return Gap, nil
	}
	s.add(m.Seq, maxHoles)
	r := entry{From: m.Author.String(), Name: displayText(name, m.Author), Seq: m.Seq, Lamport: m.Lamport,
		Time: m.Time, Text: m.Text, Sig: m.Sig, Skip: m.Text == "" && !m.Private(), Sealed: m.Sealed}
	if m.Private() {
		r.To = m.To.String()
	}
	_, off, err := c.appendLocked(r)
	if err != nil {
		return Added, err
	}
	c.indexLocked(m.Author, r, off)
	return Added, nil
}

// Vector is what the store holds: for each author (this node included),
// the number up to which it holds every record.
func (c *Store) Vector() record.Vector {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := record.Vector{}
	if c.ownSeq > 0 {
		v[c.selfID] = c.ownSeq
	}
	for id, s := range c.senders {
		if n := s.contiguous(); n > 0 {
			v[id] = n
		}
	}
	return v
}

// Held is how far the store holds author's records without a gap.
func (c *Store) Held(author mesh.PeerID) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if author == c.selfID {
		return c.ownSeq
	}
	if s := c.senders[author]; s != nil {
		return s.contiguous()
	}
	return 0
}

// After returns author's records numbered above seq, oldest first, at most
// limit of them, ready to send: own ones signed, others' as their author
// signed them. It stops early at a record it cannot pass on (one received
// before records had signatures), since the next would be out of order.
func (c *Store) After(author mesh.PeerID, seq uint64, limit int) ([]record.Chat, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.index[author]
	i, _ := slices.BinarySearchFunc(list, seq+1, func(s stored, seq uint64) int {
		return int(min(max(int64(s.seq)-int64(seq), -1), 1))
	})
	var out []record.Chat
	for _, s := range list[i:] {
		if len(out) == limit || s.seq != seq+1 {
			break
		}
		m, ok, err := c.readLocked(author, s.off)
		if err != nil || !ok {
			return out, err
		}
		out, seq = append(out, m), s.seq
	}
	return out, nil
}

// readLocked reads the record at off back from the store; ok is false for
// another member's record that has no signature.
func (c *Store) readLocked(author mesh.PeerID, off int64) (record.Chat, bool, error) {
	line, err := c.lineAt(off)
	if err != nil {
		return record.Chat{}, false, err
	}
	var r entry
	if err := json.Unmarshal(line, &r); err != nil {
		return record.Chat{}, false, fmt.Errorf("chat store at %d: %w", off, err)
	}
	m := record.Chat{Author: author, Seq: r.Seq, Lamport: r.Lamport, Time: r.Time, Text: r.Text, Sig: r.Sig}
	if r.To != "" {
		to, err := mesh.ParsePeerID(r.To)
		if err != nil {
			return record.Chat{}, false, fmt.Errorf("chat store at %d: recipient: %w", off, err)
		}
		m.To, m.Sealed = to, r.Sealed
	}
	if !r.Self {
		return m, len(r.Sig) > 0, nil
	}
	// An own line from before records: sign it now, with its number as its
	// clock and a fixed time when it had none, so that signing it again
	// gives the same record (Ed25519 signatures are deterministic).
	m.Lamport = max(m.Lamport, m.Seq)
	if m.Time.IsZero() {
		m.Time = time.Unix(0, 1)
	}
	if r.Skip {
		m.Text = ""
	}
	return m, true, c.signLocked(&m)
}

// lineAt reads the store line that starts at off.
func (c *Store) lineAt(off int64) ([]byte, error) {
	buf := make([]byte, 512)
	for {
		n, err := c.store.ReadAt(buf, off)
		if i := slices.Index(buf[:n], '\n'); i >= 0 {
			return buf[:i], nil
		}
		if err != nil || n < len(buf) {
			return nil, fmt.Errorf("chat store at %d: a line with no end: %v", off, err)
		}
		buf = make([]byte, 2*len(buf))
	}
}

// PrivateLines calls f, in the order they were stored, with every private
// line the store holds (own ones and other members', to anyone) and the
// name the store shows for its author, so a caller can render the
// conversations it can open. Lines whose recipient does not parse are
// skipped, as Accept never stores them.
func (c *Store) PrivateLines(f func(m record.Chat, name string)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scan(0, func(r entry, _ int64) {
		to, err := mesh.ParsePeerID(r.To)
		if r.To == "" || err != nil {
			return
		}
		author := c.selfID
		if !r.Self {
			if author, err = mesh.ParsePeerID(r.From); err != nil {
				return
			}
		}
		f(record.Chat{Author: author, Seq: r.Seq, Lamport: r.Lamport, Time: r.Time, To: to, Sealed: r.Sealed}, r.Name)
	})
}
