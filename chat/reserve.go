package chat

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

// Own lines go out before they are on disk here (AppendOwn), so that chat
// is not as slow as this disk's fsync. A crash of the machine can then
// lose a line some members already have. Its sequence number must never
// be given to another line, or they would drop that one as a repeat. So
// numbers are reserved on disk ahead of use, reserveAhead at a time, in
// chat.seq (8 bytes, overwritten in place: one fdatasync, no journal
// commit, every reserveAhead lines). After a crash, Open skips every
// reserved number it finds no line for, storing a skip record for each;
// catch-up sends skips like lines, and members fill the hole without
// showing anything. A clean Close hands back what it did not use.

// reserveAhead is how many own sequence numbers one reservation covers.
const reserveAhead = 64

// openReservation opens chat.seq and returns it and the number reserved
// through.
func openReservation(path string) (*os.File, uint64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", path, err)
	}
	var b [8]byte
	n, _ := f.ReadAt(b[:], 0)
	if n != len(b) {
		return f, 0, nil // new, or torn before its first sync: nothing was sent under it
	}
	return f, binary.BigEndian.Uint64(b[:]), nil
}

// reserveLocked makes sure seq is reserved on disk before its line can be
// sent. c.mu is held. It syncs here only when the reservation ran out
// before a previous line could extend it (extendReservation).
func (c *Store) reserveLocked(seq uint64) error {
	if seq <= c.reserved.Load() {
		return nil
	}
	return c.reserveThrough(seq + reserveAhead - 1)
}

// extendReservation reserves the next numbers once half of the current
// reservation is used. A line calls it after its own fsync, so the
// reservation's fsync is not on any line's way out.
func (c *Store) extendReservation(seq uint64) error {
	if c.reserved.Load()-seq >= reserveAhead/2 {
		return nil
	}
	return c.reserveThrough(seq + reserveAhead)
}

// reserveThrough records on disk that own numbers up to seq may be in use.
// Reservations only grow, except the one Close writes.
func (c *Store) reserveThrough(seq uint64) error {
	c.resMu.Lock()
	defer c.resMu.Unlock()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	if _, err := c.seqFile.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("reserve chat seq: %w", err)
	}
	if err := fdatasync(c.seqFile); err != nil {
		return fmt.Errorf("reserve chat seq: %w", err)
	}
	c.reserved.Store(seq)
	return nil
}

// skipReserved stores a skip for every reserved number no line took: after
// a crash, a line under one of them may have reached members.
func (c *Store) skipReserved() error {
	for seq := c.ownSeq + 1; seq <= c.reserved.Load(); seq++ {
		r := entry{Self: true, Skip: true, Seq: seq, Time: time.Now(), Lamport: c.lamport + 1}
		_, off, err := c.appendLocked(r)
		if err != nil {
			return err
		}
		c.ownSeq = seq
		c.indexLocked(c.selfID, r, off)
	}
	return nil
}
