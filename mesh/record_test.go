package mesh

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// TestRecordSignVerify: a record verifies with its signer's key only, and
// any change to a signed field breaks it.
func TestRecordSignVerify(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	r := signRecord(key, PeerID{1}, 100, recordAnchor, []string{"192.0.2.1:8000"})
	if err := r.verify(pub); err != nil {
		t.Fatalf("verify(signer) = %v, want nil", err)
	}
	tests := []struct {
		name string
		edit func(c *addrRecord)
		key  ed25519.PublicKey
	}{
		{"another key", func(*addrRecord) {}, other},
		{"address changed", func(c *addrRecord) { c.Addrs = []string{"192.0.2.2:8000"} }, pub},
		{"time changed", func(c *addrRecord) { c.IssuedAt++ }, pub},
		{"anchor flag dropped", func(c *addrRecord) { c.Flags = 0 }, pub},
		{"id changed", func(c *addrRecord) { c.ID = PeerID{2} }, pub},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := *r
			tc.edit(&c)
			if err := c.verify(tc.key); err == nil {
				t.Errorf("verify(%+v) = nil, want an error", c)
			}
		})
	}
}

// TestRecordDecodeBounds: malformed records are protocol errors, checked
// before anything is allocated from a claimed size.
func TestRecordDecodeBounds(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	good := encodeRecord(signRecord(key, PeerID{1}, 1, 0, []string{"h:1"}))
	nine := signRecord(key, PeerID{1}, 1, 0, slices.Repeat([]string{"h:1"}, 9))
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"short signature", good[:len(good)-1]},
		{"trailing byte", append(slices.Clone(good), 0)},
		{"unknown flag", func() []byte { b := slices.Clone(good); b[40] = 0x80; return b }()},
		{"nine addresses", encodeRecord(nine)},
		{"over the size cap", make([]byte, maxRecordLen+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeRecord(tc.in); !errors.Is(err, ErrProtocol) {
				t.Errorf("decodeRecord(%d bytes) = %v, want ErrProtocol", len(tc.in), err)
			}
		})
	}
}

// TestRecordForwarded: bob's record reaches alice only through zed, with
// a decoy as bob's address hint. Alice verifies it against bob's
// certificate, dials the record's address first (never the decoy), keeps
// the record in peers.json, and passes it on in her own PEERS.
func TestRecordForwarded(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	b := issueFor(t, a, "bob")
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	rec := b.ownRec
	b.mu.Unlock()
	if rec == nil || !slices.Contains(rec.Addrs, b.Addr().String()) {
		t.Fatalf("bob's record = %+v, want one with %s", rec, b.Addr())
	}
	z := issueFor(t, a, "zed")
	hs := fakeMember(t, z, a)
	d := newDecoy(t)
	pe := peerEntry{ID: b.ID(), Cert: b.ident.cert.Raw, Addrs: []string{d.addr()}, Record: rec.wire()}
	send(t, hs, encodeFrame(framePeers, encodePeers([]peerEntry{pe})))
	if err := testutil.WaitFor(5*time.Second, func() error { return connectedTo(a, b.ID()) }); err != nil {
		t.Fatal(err)
	}
	if n := d.count.Load(); n != 0 {
		t.Errorf("alice dialed the decoy hint %d times, want 0: the record's address comes first", n)
	}
	a.saveRoster()
	roster, err := loadRoster(a.dir, a.ident.caPool, a.revs)
	if err != nil {
		t.Fatal(err)
	}
	if got := roster[b.ID()].Record; got == nil || got.IssuedAt < rec.IssuedAt || !bytes.Equal(got.Sig, rec.Sig) && got.IssuedAt == rec.IssuedAt {
		t.Errorf("peers.json record of bob = %+v, want %+v or newer", got, rec)
	}
	if err := passesOn(a, b.ID()); err != nil {
		t.Error(err)
	}
}

// passesOn checks that n's PEERS carries a verified record of id.
func passesOn(n *Node, id PeerID) error {
	entries, err := decodePeers(n.peersPayload())
	if err != nil {
		return err
	}
	for _, pe := range entries {
		if pe.ID == id && len(pe.Record) > 0 {
			_, err := entryRecord(pe)
			return err
		}
	}
	return fmt.Errorf("%s's PEERS has no record of %s", n.Name(), id.Short())
}

// TestRecordResignedOnChange: a new mapped address signs a new, newer
// record that reaches connected members; the same address again signs
// nothing.
func TestRecordResignedOnChange(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	b := startNode(t, joinConfig(t, a, "bob"))
	fullMesh(t, a, b)
	own := func() *addrRecord {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.ownRec
	}
	before := own()
	const mapped = "203.0.113.7:4000"
	if err := b.SetMapped(mapped); err != nil {
		t.Fatal(err)
	}
	after := own()
	if after == before || after.IssuedAt <= before.IssuedAt || after.Addrs[0] != mapped {
		t.Fatalf("record after SetMapped = %+v, want a newer one starting with %s", after, mapped)
	}
	if b.SetMapped(mapped); own() != after {
		t.Error("SetMapped with the same address signed a new record")
	}
	if err := testutil.WaitFor(5*time.Second, func() error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if r := a.roster[b.ID()].Record; r == nil || r.IssuedAt != after.IssuedAt {
			return errors.New("alice does not hold bob's new record")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
