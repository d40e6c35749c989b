package mesh

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// TestMemberKey: a member's key is the one its certificate proved, what
// Signer signs verifies with it at every other member, and a removed or
// unknown member has none.
func TestMemberKey(t *testing.T) {
	alice := startNode(t, testConfig(t, "alice"))
	bob := startNode(t, joinConfig(t, alice, "bob"))
	carol := startNode(t, joinConfig(t, alice, "carol"))
	fullMesh(t, alice, bob, carol)

	msg := []byte("meshfs test\x00signed by bob")
	sig, err := bob.Signer().Sign(nil, msg, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{alice, bob, carol} {
		pub, err := n.MemberKey(bob.ID())
		if err != nil || !ed25519.Verify(pub, msg, sig) {
			t.Errorf("%s: MemberKey(bob) = %x, %v; bob's signature does not verify", n.Name(), pub, err)
		}
	}
	if pub, err := carol.MemberKey(alice.ID()); err != nil || ed25519.Verify(pub, msg, sig) {
		t.Errorf("carol: MemberKey(alice) = %v, or bob's signature verifies with alice's key", err)
	}
	if _, err := alice.MemberKey(PeerID{1}); !errors.Is(err, ErrUnknownMember) {
		t.Errorf("MemberKey(unknown) = %v, want ErrUnknownMember", err)
	}
	if _, err := alice.Remove(bob.ID().String()); err != nil {
		t.Fatal(err)
	}
	err = testutil.WaitFor(10*time.Second, func() error {
		if _, err := carol.MemberKey(bob.ID()); !errors.Is(err, ErrRevoked) {
			return errors.New("carol still gives bob's key")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
