package chat

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// The log is written with every record but synced only by Sync, so after a
// crash it may lack lines the store holds (or hold a torn tail). Sync
// records how far both files are on disk as a mark, a store record
// {"mark":true,"store":S,"log":L}: the log's first L bytes are durable and
// render exactly the store's records before offset S. Open renders the
// records from S on again and makes the log's tail from L match them.

// repair brings the log up to date with the store after the last mark.
// Without a mark (a store from before marks, or a new one) the log is
// taken as it is.
func (c *Store) repair(mark *entry) error {
	if mark == nil {
		return nil
	}
	if mark.Store > c.storeOff || mark.Log > c.logOff {
		return nil // files shorter than a mark said: nothing to repair from
	}
	var want strings.Builder
	err := c.scan(mark.Store, func(r entry, _ int64) {
		if !r.Mark {
			want.WriteString(r.line())
		}
	})
	if err != nil {
		return fmt.Errorf("repair chat log: %w", err)
	}
	have, err := io.ReadAll(io.NewSectionReader(c.log, mark.Log, c.logOff-mark.Log))
	if err != nil {
		return fmt.Errorf("repair chat log: %w", err)
	}
	tail := []byte(want.String())
	if bytes.Equal(have, tail) {
		if mark.Log == c.logOff {
			c.marked = c.logOff // nothing since the mark: no new one needed
		}
		return nil
	}
	if !bytes.HasPrefix(tail, have) {
		if err := c.log.Truncate(mark.Log); err != nil {
			return fmt.Errorf("repair chat log: %w", err)
		}
		c.logOff, have = mark.Log, nil
	}
	n, err := c.log.Write(tail[len(have):])
	c.logOff += int64(n)
	if err != nil {
		return fmt.Errorf("repair chat log: %w", err)
	}
	return nil
}
