package sync

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/meshfs/meshfs/seal"
)

// TestBoxRoundTrip: the recipient and the author open a box and get the
// file and its header; a third member cannot.
func TestBoxRoundTrip(t *testing.T) {
	n := newFakeNet(t)
	a, b, c := n.addNode("alice", nil), n.addNode("bob", nil), n.addNode("carol", nil)
	data := randBytes(7, 200<<10+3)
	h := boxHeader{Author: a.id, To: b.id, ID: transferID{1, 2}, Path: "docs/contract.pdf", Mode: 0o640, MTime: 1_700_000_000_123, Size: uint64(len(data))}
	box := sealed(t, h, data, a, b)
	if bytes.Contains(box, []byte("contract")) || bytes.Contains(box, data[:64]) {
		t.Fatal("the box holds the name or the bytes in the clear")
	}
	for _, fn := range []*fakeNode{b, a} {
		got, r, err := openBox(bytes.NewReader(box), fn.key, h)
		if err != nil || got != h {
			t.Fatalf("%s: openBox = %+v, %v; want %+v", fn.name, got, err, h)
		}
		var out bytes.Buffer
		if err := copyBox(&out, got, r); err != nil || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("%s: copyBox = %v, %d bytes; want the file", fn.name, err, out.Len())
		}
	}
	if _, _, err := openBox(bytes.NewReader(box), c.key, h); !errors.Is(err, errBox) || !errors.Is(err, seal.ErrNotRecipient) {
		t.Fatalf("carol: openBox = %v, want errBox and seal.ErrNotRecipient", err)
	}
}

// TestBoxRefused: a box under another record, cut short, or with bytes
// after the file is refused.
func TestBoxRefused(t *testing.T) {
	n := newFakeNet(t)
	a, b, m := n.addNode("alice", nil), n.addNode("bob", nil), n.addNode("mallory", nil)
	data := randBytes(8, 100<<10)
	h := boxHeader{Author: a.id, To: b.id, ID: transferID{3}, Path: "x.bin", Mode: 0o600, MTime: 1, Size: uint64(len(data))}
	box := sealed(t, h, data, a, b)
	for name, want := range map[string]boxHeader{
		"another author (mallory re-wraps alice's box)": {Author: m.id, To: b.id, ID: h.ID},
		"another transfer": {Author: a.id, To: b.id, ID: transferID{4}},
	} {
		if _, _, err := openBox(bytes.NewReader(box), b.key, want); !errors.Is(err, errBox) {
			t.Errorf("%s: openBox = %v, want errBox", name, err)
		}
	}
	cut := box[:len(box)-100]
	got, r, err := openBox(bytes.NewReader(cut), b.key, h)
	if err == nil {
		err = copyBox(&bytes.Buffer{}, got, r)
	}
	if !errors.Is(err, errBox) {
		t.Errorf("cut short: %v, want errBox", err)
	}
	// The box holds one byte more than the header the reader goes by.
	got, r, err = openBox(bytes.NewReader(box), b.key, h)
	if err != nil {
		t.Fatal(err)
	}
	got.Size--
	if err := copyBox(&bytes.Buffer{}, got, r); !errors.Is(err, errBox) {
		t.Errorf("bytes after the file: copyBox = %v, want errBox", err)
	}
}

// sealed is h's box of data from author to to.
func sealed(t *testing.T, h boxHeader, data []byte, author, to *fakeNode) []byte {
	t.Helper()
	var box bytes.Buffer
	if err := sealBox(&box, h, bytes.NewReader(data), author.key.Public().(ed25519.PublicKey), to.key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
	return box.Bytes()
}
