//go:build linux

package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// starSeq numbers the star networks of this test process, so two tests
// (or a leftover of a failed cleanup) never reuse a name.
var starSeq atomic.Int32

// starNet is a network the test makes for itself: a hub namespace and one
// namespace per leaf, each leaf joined to the hub by its own veth pair and
// /24 (hub 10.214.<i>.1, leaf 10.214.<i>.2). Leaves route everything via
// the hub, which forwards, but the hub's nftables table drops every packet
// from one leaf to another: each leaf reaches the hub, and no leaf reaches
// another.
type starNet struct {
	t       *testing.T
	hub     string            // the hub's namespace
	leaves  map[string]string // leaf name → its namespace
	index   map[string]int    // leaf name → i of its subnet
	leafDev map[string]string // leaf name → its own end of its pair, in its namespace
	table   string            // the hub's nftables table (family inet); "" when leaves meet
}

func newStarNet(t *testing.T, leaves ...string) *starNet {
	t.Helper()
	s := buildStar(t, "star", "ms", []string{"ip", "nft"}, leaves)
	s.table = "meshfs_star" // in the hub's own namespace: no other test sees it
	s.nft(`table inet ` + s.table + ` {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip saddr 10.214.0.0/16 ip daddr 10.214.0.0/16 tcp flags & (syn | ack) == syn counter drop
    ip saddr 10.214.0.0/16 ip daddr 10.214.0.0/16 drop
  }
}
`)
	t.Cleanup(func() { exec.Command("ip", "netns", "exec", s.hub, "nft", "delete", "table", "inet", s.table).Run() })
	return s
}

// buildStar makes the hub and leaf namespaces, their veth pairs, routes
// and forwarding (kind names the namespaces, tag the devices), after
// checking that tools are installed. The leaves reach each other until a
// caller adds a drop table.
func buildStar(t *testing.T, kind, tag string, tools, leaves []string) *starNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	for _, bin := range tools {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("the %s command is needed for the %s network", bin, kind)
		}
	}
	id, k := os.Getpid()%100000, starSeq.Add(1)
	s := &starNet{t: t, hub: fmt.Sprintf("meshfs-%s%d-%d", kind, k, id), leaves: map[string]string{},
		index: map[string]int{}, leafDev: map[string]string{}}
	s.addNS(s.hub)
	for i, leaf := range leaves {
		i++
		ns := fmt.Sprintf("%s-%s", s.hub, leaf)
		s.leaves[leaf], s.index[leaf] = ns, i
		s.addNS(ns)
		hubDev, leafDev := fmt.Sprintf("%s%dh%dx%d", tag, id, k, i), fmt.Sprintf("%s%dl%dx%d", tag, id, k, i)
		s.leafDev[leaf] = leafDev
		s.ip("-n", s.hub, "link", "add", hubDev, "type", "veth", "peer", "name", leafDev, "netns", ns)
		s.ip("-n", s.hub, "addr", "add", s.hubIP(leaf)+"/24", "dev", hubDev)
		s.ip("-n", ns, "addr", "add", s.leafIP(leaf)+"/24", "dev", leafDev)
		s.ip("-n", s.hub, "link", "set", hubDev, "up")
		s.ip("-n", ns, "link", "set", leafDev, "up")
		s.ip("-n", ns, "route", "add", "default", "via", s.hubIP(leaf))
	}
	s.in(s.hub, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return s
}

// addNS makes namespace ns with loopback up, removed when the test ends.
func (s *starNet) addNS(ns string) {
	s.t.Helper()
	s.ip("netns", "add", ns)
	s.t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	s.ip("-n", ns, "link", "set", "lo", "up")
}

func (s *starNet) ip(args ...string) {
	s.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		s.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// in runs a command inside namespace ns and fails the test on error.
func (s *starNet) in(ns string, args ...string) string {
	s.t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("in %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nft loads rules in the hub.
func (s *starNet) nft(rules string) {
	s.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", s.hub, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("nft: %v: %s", err, out)
	}
}

// leafNS is the namespace of leaf, for cluster.startIn.
func (s *starNet) leafNS(leaf string) string {
	s.t.Helper()
	ns, ok := s.leaves[leaf]
	if !ok {
		s.t.Fatalf("no leaf %q in the star network", leaf)
	}
	return ns
}

// hubIP is the hub's address on leaf's link.
func (s *starNet) hubIP(leaf string) string { return fmt.Sprintf("10.214.%d.1", s.leafIndex(leaf)) }

// leafIP is leaf's address.
func (s *starNet) leafIP(leaf string) string { return fmt.Sprintf("10.214.%d.2", s.leafIndex(leaf)) }

func (s *starNet) leafIndex(leaf string) int {
	s.t.Helper()
	i, ok := s.index[leaf]
	if !ok {
		s.t.Fatalf("no leaf %q in the star network", leaf)
	}
	return i
}

var dropCounter = regexp.MustCompile(`counter packets (\d+)`)

// dialsDropped is how many connection attempts (TCP SYNs) from one leaf to
// another the hub has dropped so far.
func (s *starNet) dialsDropped() int {
	s.t.Helper()
	m := dropCounter.FindStringSubmatch(s.in(s.hub, "nft", "list", "chain", "inet", s.table, "forward"))
	if m == nil {
		s.t.Fatalf("no counter in the hub's forward chain")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// startHub starts name in the hub, listening on every link (0.0.0.0:0).
// Star nodes ask no router for a port mapping: there is none.
func (s *starNet) startHub(c *cluster, name string, flags ...string) *node {
	s.t.Helper()
	return c.startIn(s.hub, name, append([]string{"--no-fuse", "--port-mapping=off", "--listen", "0.0.0.0:0"}, flags...)...)
}

// joinLeaf starts name in its leaf namespace, listening on its own
// address, and joins through hub at the hub's address on name's link.
func (s *starNet) joinLeaf(c *cluster, name string, hub *node) *node {
	s.t.Helper()
	return c.startIn(s.leafNS(name), name, "--no-fuse", "--port-mapping=off", "--listen", s.leafIP(name)+":0",
		"--join", s.hubAddr(hub, name), "--invite", hub.invite())
}

// hubAddr is hub's listen address as seen from leaf: the hub's address on
// leaf's link with the port hub listens on (its banner shows 0.0.0.0).
func (s *starNet) hubAddr(hub *node, leaf string) string {
	s.t.Helper()
	_, port, err := net.SplitHostPort(hub.addr)
	if err != nil {
		s.t.Fatalf("%s's listen address %q: %v", hub.name, hub.addr, err)
	}
	return net.JoinHostPort(s.hubIP(leaf), port)
}

// neverMeet watches a's and b's peers files for the window d and fails t
// at once if either shows the other connected at any point.
func neverMeet(t *testing.T, a, b *node, d time.Duration) {
	t.Helper()
	start := time.Now()
	var met string
	err := testutil.WaitFor(d+10*time.Second, func() error {
		for _, p := range [][2]*node{{a, b}, {b, a}} {
			if l := p[0].peerLine(p[1].name); isConnected(l) {
				met = fmt.Sprintf("%s shows %s connected: %q", p[0].name, p[1].name, l)
				return nil
			}
		}
		if time.Since(start) < d {
			return fmt.Errorf("watching %s's and %s's peers files", a.name, b.name)
		}
		return nil
	})
	if met != "" {
		t.Fatalf("%v into the watch, %s, though the hub drops every packet between them",
			time.Since(start).Round(time.Millisecond), met)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestStarNetLeavesCannotMeet: alice in the hub, bob and carol in two
// leaves. Both reach alice; neither ever shows the other connected, though
// each learns the other's address from alice and dials it (the hub's drop
// counter proves the attempts happened).
func TestStarNetLeavesCannotMeet(t *testing.T) {
	star := newStarNet(t, "bob", "carol")
	c := newCluster(t)
	alice := star.startHub(c, "alice")
	bob := star.joinLeaf(c, "bob", alice)
	carol := star.joinLeaf(c, "carol", alice)
	alice.waitConnected(bob, carol)
	bob.waitConnected(alice)
	carol.waitConnected(alice)

	neverMeet(t, bob, carol, 20*time.Second)
	if n := star.dialsDropped(); n == 0 {
		t.Errorf("the hub dropped no dial between the leaves: bob and carol never tried to meet, so the test proved nothing")
	} else {
		t.Logf("the hub dropped %d dials between the leaves", n)
	}
}

// trio starts alice in the hub and bob and carol in the leaves "bob" and
// "carol", waits until both leaves are connected to alice, and fails if
// they reached each other directly: then nothing would need a relay.
func (s *starNet) trio(c *cluster) (alice, bob, carol *node) {
	s.t.Helper()
	alice = s.startHub(c, "alice")
	bob = s.joinLeaf(c, "bob", alice)
	carol = s.joinLeaf(c, "carol", alice)
	alice.waitConnected(bob, carol)
	bob.waitConnected(alice)
	carol.waitConnected(alice)
	if l := bob.peerLine("carol"); isConnected(l) {
		s.t.Fatalf("bob reached carol directly, so nothing would need a relay: %q", l)
	}
	return alice, bob, carol
}
