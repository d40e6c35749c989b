package mesh

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// joinErr starts a joiner with cfg and returns Start's error.
func joinErr(t *testing.T, cfg Config) error {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	return n.Start(t.Context())
}

func TestInviteRefusals(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	bobCfg := joinConfig(t, a, "bob")
	b := startNode(t, bobCfg)
	fullMesh(t, a, b)

	expired, err := a.Invite(time.Nanosecond, 1) // expired by the time it is used
	if err != nil {
		t.Fatal(err)
	}
	unknown, _ := parseToken(expired.Token)
	unknown.id[0]++
	other := newOffline(t, testConfig(t, "eve"))
	otherInv, err := other.Invite(time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := a.Invite(time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		token   string
		via     *Node
		refused bool   // wraps ErrInviteRefused
		want    string // in the error text
	}{
		{"reused", bobCfg.Invite, a, true, "invite already used"},
		{"expired", expired.Token, a, true, "invite expired"},
		{"unknown", unknown.String(), a, true, "unknown invite"},
		{"not the admin", fresh.Token, b, true, "only the mesh admin can admit new members"},
		{"other mesh (mitm)", otherInv.Token, a, false, "ca fingerprint mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "mallory")
			cfg.Join, cfg.Invite = []string{tc.via.Addr().String()}, tc.token
			err := joinErr(t, cfg)
			if err == nil || errors.Is(err, ErrInviteRefused) != tc.refused || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start() = %v; want refused=%v containing %q", err, tc.refused, tc.want)
			}
		})
	}
	if _, err := b.Invite(time.Minute, 1); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("Invite on a member = %v, want ErrNotAdmin", err)
	}
	cfg := testConfig(t, "nobody")
	cfg.Join = []string{a.Addr().String()}
	if _, err := New(cfg); !errors.Is(err, ErrNeedInvite) {
		t.Fatalf("New(join without invite) = %v, want ErrNeedInvite", err)
	}
}

func TestInviteRateLimit(t *testing.T) {
	cfg := testConfig(t, "alice")
	cfg.JoinFailLimit = 2
	a := startNode(t, cfg)
	inv, err := a.Invite(time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := parseToken(inv.Token)
	bad.secret[0]++
	want := []string{"unknown invite", "unknown invite", "too many attempts"}
	for i, w := range want {
		jc := testConfig(t, "mallory")
		jc.Join, jc.Invite = []string{a.Addr().String()}, bad.String()
		if err := joinErr(t, jc); !errors.Is(err, ErrInviteRefused) || !strings.Contains(err.Error(), w) {
			t.Fatalf("attempt %d: Start() = %v, want %q", i, err, w)
		}
	}
	// The good token is refused too while the source IP is limited.
	jc := testConfig(t, "bob")
	jc.Join, jc.Invite = []string{a.Addr().String()}, inv.Token
	if err := joinErr(t, jc); !strings.Contains(fmtErr(err), "too many attempts") {
		t.Fatalf("good token while limited: %v", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestRemoveEverywhere(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	b := startNode(t, joinConfig(t, a, "bob"))
	c := startNode(t, joinConfig(t, a, "carol"))
	fullMesh(t, a, b, c)
	if _, err := b.Remove("carol"); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("Remove on a member = %v, want ErrNotAdmin", err)
	}
	if _, err := a.Remove("alice"); err == nil {
		t.Fatal("Remove(self) = nil, want an error")
	}
	info, err := a.Remove(c.ID().Short())
	if err != nil || info.ID != c.ID() {
		t.Fatalf("Remove(carol) = %v, %v", info, err)
	}
	err = testutil.WaitFor(5*time.Second, func() error {
		for _, n := range []*Node{a, b} {
			if connectedTo(n, c.ID()) == nil {
				return errors.New("still connected to carol")
			}
			for _, p := range n.Peers() {
				if p.ID == c.ID() {
					return errors.New("carol still in Peers()")
				}
			}
			if !hasRemoved(n, c.ID()) {
				return errors.New("no PeerRemoved event")
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{a, b} {
		if err := c.Connect(t.Context(), n.Addr().String()); err == nil {
			t.Fatalf("removed carol connected to %s", n.Name())
		}
	}
	if connectedTo(a, b.ID()) != nil {
		t.Fatal("alice and bob lost their connection")
	}
}

func hasRemoved(n *Node, id PeerID) bool {
	for _, e := range rec(n).snapshot() {
		if r, ok := e.(PeerRemoved); ok && r.Peer.ID == id {
			return true
		}
	}
	return false
}

// TestRemoveLearnedOnReconnect: a member offline during the removal gets
// the list in the HELLO exchange and then refuses the removed member.
func TestRemoveLearnedOnReconnect(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	bcfg := joinConfig(t, a, "bob")
	b := startNode(t, bcfg)
	c := startNode(t, joinConfig(t, a, "carol"))
	fullMesh(t, a, b, c)
	b.Close()
	if _, err := a.Remove("carol"); err != nil {
		t.Fatal(err)
	}
	bcfg.Join, bcfg.Invite = nil, ""
	b2 := startNode(t, bcfg)
	fullMesh(t, a, b2)
	if !b2.isRevoked(c.ID()) {
		t.Fatal("restarted bob did not learn the revocation")
	}
	if err := c.Connect(t.Context(), b2.Addr().String()); err == nil {
		t.Fatal("removed carol connected to bob after bob's restart")
	}
}
