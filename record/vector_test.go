package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"testing"

	"github.com/meshfs/meshfs/mesh"
)

// idN returns an ID whose bytes sort in the order of n.
func idN(n int) mesh.PeerID {
	var id mesh.PeerID
	binary.BigEndian.PutUint32(id[:4], uint32(n)+1) // never the zero ID
	id[31] = byte(n)
	return id
}

// rawVector builds an encoded vector by hand: count, then (ID, seq) pairs
// in the order given.
func rawVector(count int, entries ...any) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(count))
	for i := 0; i+1 < len(entries); i += 2 {
		id := entries[i].(mesh.PeerID)
		b = append(b, id[:]...)
		b = binary.BigEndian.AppendUint64(b, entries[i+1].(uint64))
	}
	return b
}

func TestVectorRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   Vector
		want Vector
	}{
		{"nil", nil, Vector{}},
		{"empty", Vector{}, Vector{}},
		{"one", Vector{idN(1): 7}, Vector{idN(1): 7}},
		{"several", Vector{idN(3): 1, idN(1): 1 << 40, idN(2): 9}, Vector{idN(3): 1, idN(1): 1 << 40, idN(2): 9}},
		{"zero left out", Vector{idN(1): 0, idN(2): 4}, Vector{idN(2): 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeVector(tc.in.Encode())
			if err != nil {
				t.Fatalf("DecodeVector(Encode(%v)) = %v", tc.in, err)
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("DecodeVector(Encode(%v)) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestVectorLayout(t *testing.T) {
	v := Vector{idN(2): 5, idN(1): 9, idN(3): 0}
	want := rawVector(2, idN(1), uint64(9), idN(2), uint64(5))
	if got := v.Encode(); !bytes.Equal(got, want) {
		t.Fatalf("Encode() = %x, want %x", got, want)
	}
}

func TestVectorEncodeCap(t *testing.T) {
	v := Vector{}
	for i := range MaxVectorEntries + 5 {
		v[idN(i)] = 1
	}
	got, err := DecodeVector(v.Encode())
	if err != nil {
		t.Fatalf("DecodeVector(Encode(%d entries)) = %v", len(v), err)
	}
	if len(got) != MaxVectorEntries {
		t.Fatalf("decoded %d entries, want %d", len(got), MaxVectorEntries)
	}
	for id := range got {
		if v[id] != 1 {
			t.Fatalf("decoded an entry that was not encoded: %x", id)
		}
	}
}

func TestDecodeVectorRefuses(t *testing.T) {
	over := make([]any, 0, 2*(MaxVectorEntries+1))
	for i := range MaxVectorEntries + 1 {
		over = append(over, idN(i), uint64(1))
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty input", nil},
		{"duplicate", rawVector(2, idN(1), uint64(1), idN(1), uint64(2))},
		{"unsorted", rawVector(2, idN(2), uint64(1), idN(1), uint64(2))},
		{"seq 0", rawVector(2, idN(1), uint64(1), idN(2), uint64(0))},
		{"count over max, entries present", rawVector(MaxVectorEntries+1, over...)},
		{"count over max, nothing after", rawVector(0xffff)},
		{"count above entries", rawVector(3, idN(1), uint64(1), idN(2), uint64(2))},
		{"trailing byte", append(rawVector(1, idN(1), uint64(1)), 0)},
		{"trailing entry", rawVector(1, idN(1), uint64(1), idN(2), uint64(2))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if v, err := DecodeVector(tc.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeVector = %v, %v, want ErrMalformed", v, err)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		b := Vector{idN(1): 1, idN(2): 2, idN(3): 3}.Encode()
		for i := range len(b) {
			if _, err := DecodeVector(b[:i]); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeVector(first %d of %d bytes) = %v, want ErrMalformed", i, len(b), err)
			}
		}
	})
}

func TestLacks(t *testing.T) {
	a, b, c := idN(1), idN(2), idN(3)
	tests := []struct {
		name      string
		v, have   Vector
		wantLacks map[mesh.PeerID]uint64
	}{
		{"both empty", nil, nil, map[mesh.PeerID]uint64{}},
		{"same", Vector{a: 3}, Vector{a: 3}, map[mesh.PeerID]uint64{}},
		{"v ahead", Vector{a: 5}, Vector{a: 3}, map[mesh.PeerID]uint64{}},
		{"v behind", Vector{a: 2}, Vector{a: 5}, map[mesh.PeerID]uint64{a: 2}},
		{"author v has not seen", Vector{a: 2}, Vector{b: 4}, map[mesh.PeerID]uint64{b: 0}},
		{"zero entry in have", Vector{}, Vector{a: 0}, map[mesh.PeerID]uint64{}},
		{"mixed", Vector{a: 5, b: 1, c: 9}, Vector{a: 3, b: 4, c: 10}, map[mesh.PeerID]uint64{b: 1, c: 9}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.v.Lacks(tc.have)
			if got == nil || !maps.Equal(got, tc.wantLacks) {
				t.Fatalf("%v.Lacks(%v) = %v, want %v", tc.v, tc.have, got, tc.wantLacks)
			}
		})
	}
}

func TestClone(t *testing.T) {
	v := Vector{idN(1): 1}
	c := v.Clone()
	c[idN(1)] = 2
	c[idN(2)] = 1
	if v[idN(1)] != 1 || len(v) != 1 {
		t.Fatalf("changing a clone changed the original: %v", v)
	}
	if n := Vector(nil).Clone(); n == nil {
		t.Fatalf("Vector(nil).Clone() = nil, want an empty vector")
	}
}
