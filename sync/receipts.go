package sync

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// Receipts. A member that placed a file signs a receipt (record.Receipt:
// "I hold transfer ID of author A, verified"), and receipts spread like
// chat lines (room.go): every member passes on the ones it did not have,
// and sends all it holds to a member that connects. So the author learns
// who has its file even when it was away while they got it, and moves the
// file to sent/ without sending it again; and a member passing a file on
// stops offering it to whoever already has it.
//
// The book is kept in receipts.jsonl, a line appended per receipt; Open
// drops the receipts older than ReceiptTTL and writes the rest anew.

// ReceiptTTL is how long a receipt is kept and passed on.
const ReceiptTTL = 30 * 24 * time.Hour

// receiptBook holds the receipts this member knows. Safe for concurrent use.
type receiptBook struct {
	mu   sync.Mutex
	by   map[inKey]map[mesh.PeerID]receiptEntry
	f    *os.File // the journal, appended
	path string
}

type receiptEntry struct {
	r  record.Receipt
	at time.Time // when this member first had it
}

// receiptLine is one line of receipts.jsonl.
type receiptLine struct {
	R  []byte    `json:"r"` // record.EncodeReceipt
	At time.Time `json:"at"`
}

// openReceipts loads the book, compacts it and opens it for appending.
func openReceipts(path string) (*receiptBook, error) {
	b := &receiptBook{by: map[inKey]map[mesh.PeerID]receiptEntry{}, path: path}
	if err := b.load(); err != nil {
		return nil, err
	}
	var data []byte
	for _, byWho := range b.by {
		for _, e := range byWho {
			line, err := json.Marshal(receiptLine{R: record.EncodeReceipt(e.r), At: e.at})
			if err != nil {
				return nil, fmt.Errorf("receipts: %w", err)
			}
			data = append(append(data, line...), '\n')
		}
	}
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("receipts: %w", err)
	}
	b.f = f
	return b, nil
}

// load reads the journal; lines that do not parse (a torn write) and
// receipts past ReceiptTTL are left out.
func (b *receiptBook) load() error {
	f, err := os.Open(b.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("receipts: %w", err)
	}
	defer f.Close()
	cutoff := time.Now().Add(-ReceiptTTL)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l receiptLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.At.Before(cutoff) {
			continue
		}
		if r, err := record.DecodeReceipt(l.R); err == nil {
			b.put(r, l.At)
		}
	}
	return sc.Err()
}

func keyOf(r record.Receipt) inKey { return inKey{r.Author, r.ID} }

// put adds r in memory; false if it was there.
func (b *receiptBook) put(r record.Receipt, at time.Time) bool {
	k := keyOf(r)
	byWho := b.by[k]
	if byWho == nil {
		byWho = map[mesh.PeerID]receiptEntry{}
		b.by[k] = byWho
	}
	if _, ok := byWho[r.Receiver]; ok {
		return false
	}
	byWho[r.Receiver] = receiptEntry{r: r, at: at}
	return true
}

// add keeps a verified receipt and reports whether it is new. The journal
// is not synced: a receipt lost in a crash comes again from another member.
func (b *receiptBook) add(r record.Receipt) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if !b.put(r, now) {
		return false, nil
	}
	line, err := json.Marshal(receiptLine{R: record.EncodeReceipt(r), At: now})
	if err == nil {
		_, err = b.f.Write(append(line, '\n'))
	}
	return true, err
}

// has reports whether who's receipt for k is known.
func (b *receiptBook) has(k inKey, who mesh.PeerID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.by[k][who]
	return ok
}

// all returns every receipt held.
func (b *receiptBook) all() []record.Receipt {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []record.Receipt
	for _, byWho := range b.by {
		for _, e := range byWho {
			out = append(out, e.r)
		}
	}
	return out
}

// close closes the journal.
func (b *receiptBook) close() error { return b.f.Close() }
