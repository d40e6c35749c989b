package mesh

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// anchorOf waits until n's view of id says anchor (PeerInfo.Anchor).
func anchorOf(n *Node, id PeerID) error {
	for _, p := range n.Peers() {
		if p.ID == id {
			if !p.Anchor {
				return fmt.Errorf("%s: %s is not an anchor", n.Name(), p.Name)
			}
			return nil
		}
	}
	return fmt.Errorf("%s does not know %s", n.Name(), id.Short())
}

// knowsAdmin waits until n has a connection to a member whose record says
// it is the admin: only then can it relay a join.
func knowsAdmin(n *Node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.adminPeerLocked() == nil {
		return errors.New("the anchor does not know the admin's connection")
	}
	return nil
}

// TestAnchorJoin: bob is an anchor. Alice's invite lists his address
// after hers; carol, given only bob's address, joins through him while
// alice is up; a wrong token is refused through him with alice's reason;
// once alice is down, dave is told the admin is not reachable, which is
// transient, so he tries again until JoinRetryFor.
func TestAnchorJoin(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	bcfg := joinConfig(t, a, "bob")
	bcfg.Anchor = true
	b := startNode(t, bcfg)
	fullMesh(t, a, b)
	if err := testutil.WaitFor(5*time.Second, func() error { return errors.Join(anchorOf(a, b.ID()), knowsAdmin(b)) }); err != nil {
		t.Fatal(err)
	}
	if ja := a.JoinAddrs(); len(ja) < 2 || ja[0] != a.Addr().String() || !slices.Contains(ja, b.Addr().String()) {
		t.Errorf("JoinAddrs() = %v, want alice's %s first and anchor bob's %s", ja, a.Addr(), b.Addr())
	}
	ccfg := joinConfig(t, a, "carol")
	ccfg.Join = []string{b.Addr().String()} // alice is reachable only through bob
	c := startNode(t, ccfg)
	if c.MeshID() != a.MeshID() {
		t.Fatalf("carol's mesh = %q, want %q", c.MeshID(), a.MeshID())
	}
	fullMesh(t, a, b, c)

	bad := testConfig(t, "mallory")
	bad.Join, bad.Invite = []string{b.Addr().String()}, wrongToken(t, a)
	if err := joinErr(t, bad); !errors.Is(err, ErrInviteRefused) || !strings.Contains(err.Error(), "unknown invite") {
		t.Errorf("join with a wrong token through bob = %v, want the admin's refusal (unknown invite)", err)
	}

	dcfg := joinConfig(t, a, "dave")
	dcfg.Join = []string{b.Addr().String()}
	dcfg.JoinRetryFor = 1500 * time.Millisecond // one retry after 1 s
	a.Close()
	if err := testutil.WaitFor(5*time.Second, func() error {
		if connectedTo(b, a.ID()) == nil {
			return errors.New("bob still connected to alice")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := joinErr(t, dcfg)
	if !errors.Is(err, ErrAdminUnreachable) || !strings.Contains(err.Error(), "not reachable from this member; try again later") {
		t.Fatalf("join through bob with alice down = %v, want ErrAdminUnreachable", err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("join gave up after %v, want a retry after 1 s (the refusal is transient)", took)
	}
}

// wrongToken is a token of a's mesh whose invite does not exist.
func wrongToken(t *testing.T, a *Node) string {
	t.Helper()
	inv, err := a.Invite(time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := parseToken(inv.Token)
	if err != nil {
		t.Fatal(err)
	}
	tok.id[0]++
	return tok.String()
}

// TestNonAnchorRefusesJoiner: a member without Anchor still refuses a
// joiner in TLS, as before anchors.
func TestNonAnchorRefusesJoiner(t *testing.T) {
	a := startNode(t, testConfig(t, "alice"))
	b := startNode(t, joinConfig(t, a, "bob"))
	fullMesh(t, a, b)
	cfg := joinConfig(t, a, "carol")
	cfg.Join = []string{b.Addr().String()}
	if err := joinErr(t, cfg); !errors.Is(err, ErrInviteRefused) || transientJoin(err) {
		t.Errorf("join through a member that is not an anchor = %v, want a final refusal", err)
	}
	if slices.Contains(a.JoinAddrs(), b.Addr().String()) {
		t.Errorf("JoinAddrs() = %v lists bob, who is not an anchor", a.JoinAddrs())
	}
}

// TestJoinAddrsOrder: anchors' record addresses are taken in turns, most
// recently seen anchor first, without repeats and at most maxJoinAddrs;
// members that are not anchors, and removed anchors, are left out.
func TestJoinAddrsOrder(t *testing.T) {
	a := newOffline(t, testConfig(t, "alice")) // not started: no addresses of its own
	now := time.Now()
	add := func(name string, seen time.Duration, flags uint8, addrs ...string) PeerID {
		id, cert := memberCertFor(t, a, name)
		a.roster[id] = &member{ID: id, Name: name, Cert: cert, LastSeen: now.Add(-seen),
			Record: &addrRecord{ID: id, Flags: flags, Addrs: addrs}}
		return id
	}
	add("old", time.Hour, recordAnchor, "198.51.100.1:1", "198.51.100.1:2", "198.51.100.1:3")
	add("new", time.Minute, recordAnchor, "203.0.113.1:1", "198.51.100.1:1", "203.0.113.1:2", "203.0.113.1:3", "203.0.113.1:4")
	add("plain", 0, 0, "192.0.2.1:1")
	gone := add("gone", 0, recordAnchor, "192.0.2.9:1")
	a.revs = &revocationList{Version: 1, Revoked: []PeerID{gone}}
	want := []string{"203.0.113.1:1", "198.51.100.1:1", "198.51.100.1:2", "203.0.113.1:2",
		"198.51.100.1:3", "203.0.113.1:3", "203.0.113.1:4"}
	if got := a.JoinAddrs(); !slices.Equal(got, want) {
		t.Errorf("JoinAddrs() = %q, want %q", got, want)
	}
	add("many", 2*time.Hour, recordAnchor, "192.0.2.50:1", "192.0.2.50:2")
	if got := a.JoinAddrs(); len(got) != maxJoinAddrs {
		t.Errorf("JoinAddrs() = %q, want %d addresses", got, maxJoinAddrs)
	}
}
