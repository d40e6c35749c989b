package chat

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/meshfs/meshfs/internal/atomicfile"
)

// The write-ahead file chat.wal is what an own line waits on. It has a
// fixed size, written with zeros and fsynced once when created, and lines
// are written into it in place, wrapping around: so making one durable is
// an fdatasync of an overwrite, which needs no journal commit. An append
// to chat.jsonl needs one (the file grows), and on ext4 in ordered mode a
// journal commit first writes out the data of every file the commit
// covers: with a file transfer writing hundreds of MiB, a chat line's
// fsync took 15-80 ms, and up to 360 ms.
//
// Every own line goes to the store and the log as well; chat.wal only
// holds it until Sync makes the store durable. Open appends to the store
// the own lines the wal holds and the store lacks (those with a higher
// seq), which is what a crash after AppendOwn returned can leave.

// walSize is the size of chat.wal: about 6000 lines between the fsyncs of
// the store that a wrap around costs.
const walSize = 1 << 20

// openWAL opens chat.wal, (re)creating it zero-filled when it is new or
// not walSize long.
func openWAL(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != walSize {
		err = fillZeros(f)
		if err == nil { // the new file's name must survive a crash too
			err = atomicfile.SyncDir(filepath.Dir(path))
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}

// fillZeros writes walSize zeros from the start and fsyncs: the blocks
// then exist, so later overwrites change no metadata.
func fillZeros(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(make([]byte, walSize), 0); err != nil {
		return err
	}
	return f.Sync()
}

// walAppendLocked writes one encoded own record into the wal and returns
// its number for waitDurable. At the end of the wal it first makes the
// store durable (what the wal held is then safe there) and starts over.
func (c *Store) walAppendLocked(data []byte) (uint64, error) {
	if c.walOff+int64(len(data)) > walSize {
		if err := c.store.Sync(); err != nil {
			return 0, fmt.Errorf("sync chat store: %w", err)
		}
		c.walOff = 0
	}
	if _, err := c.wal.WriteAt(data, c.walOff); err != nil {
		return 0, fmt.Errorf("write chat wal: %w", err)
	}
	c.walOff += int64(len(data))
	return c.written.Add(1), nil
}

// replayWAL appends to the store, in seq order, the own lines the wal
// holds that the store lost. Stale lines, and pieces of lines that a
// later one overwrote, fail to parse or have an old seq.
func (c *Store) replayWAL() error {
	var lost []entry
	sc := bufio.NewScanner(io.NewSectionReader(c.wal, 0, walSize))
	sc.Buffer(make([]byte, 64<<10), walSize+1)
	for sc.Scan() {
		var r entry
		line := bytes.Trim(sc.Bytes(), "\x00")
		if json.Unmarshal(line, &r) == nil && r.Self && r.Seq > c.ownSeq {
			lost = append(lost, r)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("replay chat wal: %w", err)
	}
	slices.SortFunc(lost, func(a, b entry) int { return cmp.Compare(a.Seq, b.Seq) })
	lost = slices.CompactFunc(lost, func(a, b entry) bool { return a.Seq == b.Seq })
	for _, r := range lost {
		_, off, err := c.appendLocked(r)
		if err != nil {
			return err
		}
		c.ownSeq = r.Seq
		c.indexLocked(c.selfID, r, off)
	}
	return nil
}
