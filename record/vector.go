package record

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/meshfs/meshfs/internal/wire"
	"github.com/meshfs/meshfs/mesh"
)

// MaxVectorEntries is the most authors one encoded vector carries. It
// matches the most members a mesh can revoke, so a real mesh stays far
// below it.
const MaxVectorEntries = 4096

// vectorEntrySize is one encoded entry: an ID and a u64 sequence number.
const vectorEntrySize = len(mesh.PeerID{}) + 8

// Vector is what a member holds: author -> highest sequence number up to
// which it holds every record of that author. A missing author and 0 mean
// the same: nothing held.
type Vector map[mesh.PeerID]uint64

// Encode returns the wire form: u16 count, then the entries sorted by ID
// bytes, each the ID (32 bytes) and seq u64. Entries with seq 0 are left
// out. Past MaxVectorEntries entries only the first MaxVectorEntries in ID
// order are written: the reader takes the rest as 0, which costs resent
// records, never lost ones.
func (v Vector) Encode() []byte {
	ids := v.sortedIDs()
	if len(ids) > MaxVectorEntries {
		ids = ids[:MaxVectorEntries]
	}
	var e wire.Encoder
	e.B = make([]byte, 0, 2+len(ids)*vectorEntrySize)
	e.U16(uint16(len(ids)))
	for _, id := range ids {
		e.Raw(id[:])
		e.U64(v[id])
	}
	return e.B
}

// sortedIDs lists the authors with a non-zero seq in ascending byte order.
func (v Vector) sortedIDs() []mesh.PeerID {
	ids := make([]mesh.PeerID, 0, len(v))
	for id, seq := range v {
		if seq != 0 {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b mesh.PeerID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// DecodeVector parses exactly one encoded vector. It refuses a count over
// MaxVectorEntries, IDs that are not strictly ascending (unsorted or
// repeated), seq 0, truncation and trailing bytes, so every vector has one
// encoding.
func DecodeVector(b []byte) (Vector, error) {
	d := wire.Decoder{B: b}
	n := int(d.U16())
	if d.Err() == nil && n > MaxVectorEntries {
		return nil, fmt.Errorf("decode vector: %w: %d entries over %d", ErrMalformed, n, MaxVectorEntries)
	}
	if d.Err() == nil && d.Len() < n*vectorEntrySize { // before allocating for n
		d.Failf("%d entries in %d bytes", n, d.Len())
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("decode vector: %w: %w", ErrMalformed, err)
	}
	v := make(Vector, n)
	var prev mesh.PeerID
	for i := 0; i < n && d.Err() == nil; i++ {
		var id mesh.PeerID
		d.Into(id[:])
		seq := d.U64()
		if err := checkEntry(i, prev, id, seq); err != nil {
			d.Fail(err)
		}
		v[id], prev = seq, id
	}
	if err := d.End(); err != nil {
		return nil, fmt.Errorf("decode vector: %w: %w", ErrMalformed, err)
	}
	return v, nil
}

// checkEntry checks entry i against the one before it.
func checkEntry(i int, prev, id mesh.PeerID, seq uint64) error {
	if i > 0 && bytes.Compare(prev[:], id[:]) >= 0 {
		return fmt.Errorf("entry %d: ids not strictly ascending", i)
	}
	if seq == 0 {
		return fmt.Errorf("entry %d: seq 0", i)
	}
	return nil
}

// Clone returns a copy of v that shares nothing with it.
func (v Vector) Clone() Vector {
	if v == nil {
		return Vector{}
	}
	return maps.Clone(v)
}

// Lacks compares v with have, another member's vector. For each author a
// with have[a] > v[a], v lacks the records (v[a], have[a]]; the result maps
// a to v[a], v's own count, so the holder sends a's records after it.
// Authors v is not behind on are left out; the result is empty, not nil,
// when v lacks nothing.
func (v Vector) Lacks(have Vector) map[mesh.PeerID]uint64 {
	out := make(map[mesh.PeerID]uint64)
	for a, n := range have {
		if n > v[a] {
			out[a] = v[a]
		}
	}
	return out
}
