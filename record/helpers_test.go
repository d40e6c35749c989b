package record

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

// testTime is a fixed wall clock with nanoseconds, so a lost digit shows.
var testTime = time.Unix(1_800_000_000, 123_456_789)

// author is a member with a key, its ID derived as mesh derives it.
type author struct {
	id  mesh.PeerID
	key ed25519.PrivateKey
}

// newAuthor returns a member whose key comes from a seed, so runs repeat.
func newAuthor(t testing.TB, seed byte) author {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	id, err := idOf(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return author{id: id, key: key}
}

func (a author) pub() ed25519.PublicKey { return a.key.Public().(ed25519.PublicKey) }

// signed returns record seq of a, signed by a.
func (a author) signed(seq uint64, text string) Chat {
	c := Chat{Author: a.id, Seq: seq, Lamport: seq + 10, Time: testTime.Add(time.Duration(seq) * time.Second), Text: text}
	c.Sign(a.key)
	return c
}

// keyring is a Keys over a fixed set of members; revoked ones give errRevoked.
type keyring struct {
	keys    map[mesh.PeerID]ed25519.PublicKey
	revoked map[mesh.PeerID]bool
}

var errRevoked = errors.New("member revoked")

func newKeyring(members ...author) *keyring {
	k := &keyring{keys: map[mesh.PeerID]ed25519.PublicKey{}, revoked: map[mesh.PeerID]bool{}}
	for _, m := range members {
		k.keys[m.id] = m.pub()
	}
	return k
}

func (k *keyring) MemberKey(id mesh.PeerID) (ed25519.PublicKey, error) {
	if k.revoked[id] {
		return nil, fmt.Errorf("member %s: %w", id.Short(), errRevoked)
	}
	pub, ok := k.keys[id]
	if !ok {
		return nil, fmt.Errorf("member %s: %w", id.Short(), mesh.ErrUnknownPeer)
	}
	return pub, nil
}

var _ Keys = (*keyring)(nil)
