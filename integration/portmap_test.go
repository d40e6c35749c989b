//go:build linux

package integration

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// The home router's network: a public side (pubNet, where alice lives and
// the router has routerPubIP) and a home side behind it (homeNet, where
// bob lives). miniupnpd refuses to map ports when its external address is
// private or reserved (10/8, 192.0.2/24, 198.51.100/24 ...), so the public
// side uses a routable-looking prefix; it exists only inside the test's
// namespaces, with no route out.
const (
	routerPubIP  = "198.20.7.1"
	alicePubIP   = "198.20.7.2"
	routerHomeIP = "192.168.213.1"
	bobHomeIP    = "192.168.213.2"
	homeNet      = "192.168.213.0/24"
)

// homeRouter is three namespaces the test makes: pub (alice), router
// (miniupnpd, masquerading home → pub) and home (bob, default route via
// the router).
type homeRouter struct {
	*testNet
	pub, router, home string
	extDev, intDev    string // the router's interfaces toward pub and home
}

// needTools installs miniupnpd and nftables when missing. A test that
// cannot get them skips on a developer machine and fails in CI
// (MESHFS_REQUIRE_FUSE=1), where the miniupnpd case must run.
func needTools(t *testing.T) {
	t.Helper()
	missing := func() []string {
		var m []string
		for bin, pkg := range map[string]string{"miniupnpd": "miniupnpd", "nft": "nftables"} {
			if _, err := exec.LookPath(bin); err != nil {
				m = append(m, pkg)
			}
		}
		return m
	}
	pkgs := missing()
	if len(pkgs) == 0 {
		return
	}
	cmd := exec.Command("apt-get", append([]string{"install", "-y", "-qq"}, pkgs...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if pkgs = missing(); len(pkgs) == 0 {
		return
	}
	msg := fmt.Sprintf("%v missing and 'apt-get install' failed (%v): %s", pkgs, err, lastLine(string(out)))
	if os.Getenv("MESHFS_REQUIRE_FUSE") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func newHomeRouter(t *testing.T) *homeRouter {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	needTools(t)
	id := os.Getpid() % 100000
	h := &homeRouter{testNet: &testNet{t: t}, pub: fmt.Sprintf("meshfs-pub-%d", id),
		router: fmt.Sprintf("meshfs-rtr-%d", id), home: fmt.Sprintf("meshfs-home-%d", id),
		extDev: fmt.Sprintf("mre%d", id), intDev: fmt.Sprintf("mri%d", id)}
	for _, ns := range []string{h.pub, h.router, h.home} {
		h.ip("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		h.ip("-n", ns, "link", "set", "lo", "up")
	}
	h.pair(h.extDev, routerPubIP, h.pub, alicePubIP)
	h.pair(h.intDev, routerHomeIP, h.home, bobHomeIP)
	h.ip("-n", h.home, "route", "add", "default", "via", routerHomeIP)
	h.in(h.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	h.nft(routerRules(h.extDev))
	return h
}

// pair links the router (routerDev, routerIP) to namespace ns (ip) by a
// veth pair; both ends are /24.
func (h *homeRouter) pair(routerDev, routerIP, ns, ip string) {
	far := routerDev + "p"
	h.ip("-n", h.router, "link", "add", routerDev, "type", "veth", "peer", "name", far, "netns", ns)
	h.ip("-n", h.router, "addr", "add", routerIP+"/24", "dev", routerDev)
	h.ip("-n", ns, "addr", "add", ip+"/24", "dev", far)
	h.ip("-n", h.router, "link", "set", routerDev, "up")
	h.ip("-n", ns, "link", "set", far, "up")
}

// routerRules are the router's nftables: masquerade home → pub, and the
// table and chains miniupnpd's nftables backend fills (the layout of
// /etc/miniupnpd/nft_init.sh with its default names), which it expects to
// exist.
func routerRules(extDev string) string {
	return `table inet filter {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "` + extDev + `" masquerade
  }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
`
}

// in runs a command inside namespace ns and fails the test on error.
func (h *homeRouter) in(ns string, args ...string) string {
	h.t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		h.t.Fatalf("in %s: %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nft applies rules in the router.
func (h *homeRouter) nft(rules string) {
	h.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", h.router, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		h.t.Fatalf("nft: %v: %s", err, out)
	}
}

// startMiniupnpd runs miniupnpd in the router, in the foreground, with a
// configuration of its own (external side toward pub, serving home), and
// waits until it answers NAT-PMP and UPnP.
func (h *homeRouter) startMiniupnpd(natpmp, upnp bool) {
	t := h.t
	t.Helper()
	dir := t.TempDir()
	yes := map[bool]string{true: "yes", false: "no"}
	conf := strings.Join([]string{
		"ext_ifname=" + h.extDev,
		"listening_ip=" + h.intDev,
		"http_port=0",
		"enable_natpmp=" + yes[natpmp],
		"enable_upnp=" + yes[upnp],
		"secure_mode=yes", // a client maps ports to itself only
		"system_uptime=yes",
		"uuid=" + randomUUID(t),
		"lease_file=" + filepath.Join(dir, "leases"),
		"allow 1024-65535 " + homeNet + " 1024-65535",
		"deny 0-65535 0.0.0.0/0 0-65535",
	}, "\n") + "\n"
	confPath := filepath.Join(dir, "miniupnpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", h.router, "miniupnpd", "-f", confPath, "-d",
		"-P", filepath.Join(dir, "miniupnpd.pid"))
	cmd.Stdout, cmd.Stderr = prefixWriter(t, "miniupnpd"), prefixWriter(t, "miniupnpd")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start miniupnpd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt) // it removes its rules on the way out
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	err := testutil.WaitFor(10*time.Second, func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("miniupnpd exited: %v", err)
		default:
		}
		if out := h.in(h.router, "ss", "-lnu"); !strings.Contains(out, ":1900") && !strings.Contains(out, ":5351") {
			return fmt.Errorf("miniupnpd not listening yet: %s", out)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func randomUUID(t *testing.T) string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// nodeStatus is the part of 'meshfs status --json' this test reads.
type nodeStatus struct {
	Self struct {
		Addresses struct {
			Listen         string
			Observed       []string
			Mapped         string
			MappingProblem string `json:"mapping_problem"`
		}
	}
	Peers []peerStatus
}

// peerStatus is one member of nodeStatus.Peers.
type peerStatus struct {
	Name, State, Addr string
	Outbound          bool
	Path              string    `json:"path"`      // "direct", "punched", "relayed", or "" (no route)
	Transport         string    `json:"transport"` // of a live connection: "tcp" or "quic"
	Through           []string  `json:"through"`   // members it is reachable through, when relayed
	Since             time.Time `json:"since"`     // when the live connection opened
	Received          uint64    `json:"received_bytes"`
}

// peer is st's entry for member name; its State is "" when st lists none.
func (st nodeStatus) peer(name string) peerStatus {
	for _, p := range st.Peers {
		if p.Name == name {
			return p
		}
	}
	return peerStatus{Name: name}
}

func (n *node) status() (nodeStatus, error) {
	var st nodeStatus
	out, err := n.c.meshfs("status", "--json", n.mnt)
	if err == nil {
		err = json.Unmarshal([]byte(out), &st)
	}
	return st, err
}

// TestPortMappingMiniupnpd: bob, at home behind a masquerading router that
// runs miniupnpd, maps his listen port there, publishes the mapped address,
// and alice, outside, dials him at it. To show that the connection is hers,
// the router then drops every new connection from home to pub and bob
// restarts: the two meet again only because alice dials the mapped port.
// It runs once with NAT-PMP and once with UPnP IGD.
func TestPortMappingMiniupnpd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a router and restarts a member")
	}
	for _, tc := range []struct {
		name         string
		natpmp, upnp bool
	}{{"nat-pmp", true, false}, {"upnp", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHomeRouter(t)
			h.startMiniupnpd(tc.natpmp, tc.upnp)
			testMappedMemberIsDialed(t, h, tc.name)
		})
	}
}

func testMappedMemberIsDialed(t *testing.T, h *homeRouter, via string) {
	c := newCluster(t)
	alice := c.startIn(h.pub, "alice", "--no-fuse", "--listen", alicePubIP+":0")
	out, err := c.meshfs("invite", alice.mnt)
	if err != nil {
		t.Fatal(err)
	}
	// bob joins with what the invite prints, as a person would.
	join := regexp.MustCompile(`--join (\S+)`).FindStringSubmatch(out)
	if join == nil || strings.Split(join[1], ",")[0] != alice.addr {
		t.Fatalf("invite does not name alice's address %s first:\n%s", alice.addr, out)
	}
	bobFlags := []string{"--no-fuse", "--listen", bobHomeIP + ":0"}
	bob := c.startIn(h.home, "bob", append(bobFlags, "--join", join[1], "--invite", lastLine(out))...)
	_, port, _ := net.SplitHostPort(bob.addr)
	mapped := net.JoinHostPort(routerPubIP, port)
	waitStatus(t, bob, func(st nodeStatus) error {
		if a := st.Self.Addresses; a.Mapped != mapped {
			return fmt.Errorf("bob's mapped address is %q (%s), want %s", a.Mapped, a.MappingProblem, mapped)
		}
		return nil
	})
	if !strings.Contains(bob.log.String(), "via="+via) {
		t.Errorf("bob's log does not say the port was mapped via %s", via)
	}
	if rules := h.in(h.router, "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd"); !strings.Contains(rules, bobHomeIP+":"+port) {
		t.Errorf("the router has no forward to %s:%s:\n%s", bobHomeIP, port, rules)
	}
	alice.waitConnected(bob)

	// From now on bob cannot open a connection to pub; only alice can
	// open one, to the mapped port.
	h.nft(`add rule inet filter forward iifname "` + h.intDev + `" ct state new drop` + "\n")
	if err := bob.stop(os.Interrupt); err != nil {
		t.Fatalf("bob did not stop: %v", err)
	}
	if rules := h.in(h.router, "nft", "list", "chain", "inet", "filter", "prerouting_miniupnpd"); strings.Contains(rules, bobHomeIP+":"+port) {
		t.Errorf("bob's mapping is still at the router after he stopped:\n%s", rules)
	}
	c.restartIn(bob, h.home, "--no-fuse", "--listen", bob.addr)
	waitStatus(t, alice, func(st nodeStatus) error {
		for _, p := range st.Peers {
			if p.Name == "bob" && p.State == "connected" && p.Outbound && p.Addr == mapped {
				return nil
			}
		}
		return fmt.Errorf("alice has no connection she dialed to bob at %s: %+v", mapped, st.Peers)
	})
	waitStatus(t, bob, func(st nodeStatus) error {
		if !contains(st.Self.Addresses.Observed, mapped) {
			return fmt.Errorf("bob is observed at %v, want %s among them", st.Self.Addresses.Observed, mapped)
		}
		return nil
	})
}

// waitStatus polls n's status until check passes.
func waitStatus(t *testing.T, n *node, check func(nodeStatus) error) {
	t.Helper()
	if err := waitStatusWithin(n, 30*time.Second, check); err != nil {
		t.Fatal(err)
	}
}

// waitStatusWithin polls n's status until check passes, and returns
// check's last error if it still fails after within.
func waitStatusWithin(n *node, within time.Duration, check func(nodeStatus) error) error {
	return testutil.WaitFor(within, func() error {
		st, err := n.status()
		if err != nil {
			return err
		}
		return check(st)
	})
}

// restartIn starts n's process again in namespace ns with flags.
func (c *cluster) restartIn(n *node, ns string, flags ...string) {
	c.t.Helper()
	saved := meshfsBin
	meshfsBin = filepath.Join(c.dir, "meshfs-in-"+ns) // written by startIn
	defer func() { meshfsBin = saved }()
	n.run(flags...)
}
