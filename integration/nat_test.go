//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// NAT traversal and roaming. Two members at home, each behind its own
// masquerading router that drops every connection from outside, cannot
// dial each other; alice, on a public address, introduces them. Where UDP
// passes, each sends STUN checks to the outside UDP address alice's STUN
// answer gave the other, which opens both NATs, and they meet over QUIC
// (TestTwoHomesPunchedQUIC, with forwarded TCP between the homes
// dropped). Where UDP is blocked, both dial at once from the port the NAT
// already shows alice, so each router takes the other's SYN for the reply
// to its own (TestTwoHomesPunched). A
// NAT that picks a new port per connection defeats that; files and lines
// then go through alice (TestTwoHomesSymmetricNAT). A member whose address
// changes mid-transfer reconnects within seconds, in the same process, and
// the transfer resumes (TestRoaming).

// The two-homes network. Link k of the forwarding "internet" namespace
// (0: alice's, 1 and 2: router i's external side) is 198.20.<8+k>.0/24,
// inet .1, the far end .2; home i is 10.215.<i>.0/24, router .1, member .2.
func natInetIP(k int) string    { return fmt.Sprintf("198.20.%d.1", 8+k) }
func natFarIP(k int) string     { return fmt.Sprintf("198.20.%d.2", 8+k) }
func natHomeIP(i, h int) string { return fmt.Sprintf("10.215.%d.%d", i, h) }

// natTable is each router's nftables table (in its own namespace).
const natTable = "meshfs_nat"

// twoHomes is the namespaces the NAT tests make: "inet" only forwards,
// between alice's namespace (pub) and the external sides of routers r1 and
// r2; behind router i is home i (bob in h1, carol in h2), routed via it.
// Packets between the homes go r1 → inet → r2, never through pub.
type twoHomes struct {
	t     *testing.T
	pub   string
	homes [3]*homeRouter // 1 and 2: router, home and devices of home i
}

// newTwoHomes builds the network. Each router masquerades what leaves its
// external side (with randomPorts, fully-random: a new external port per
// connection, a symmetric NAT), forwards only what comes from home or
// belongs to a connection seen, and drops new connections to itself from
// outside.
func newTwoHomes(t *testing.T, randomPorts bool) *twoHomes {
	t.Helper()
	return newTwoHomesWith(t, randomPorts, false)
}

// newTwoHomesWith is newTwoHomes; with udp the routers pass UDP like
// any NAT but drop TCP from home to anywhere but alice, so only UDP can
// join the homes.
func newTwoHomesWith(t *testing.T, randomPorts, udp bool) *twoHomes {
	t.Helper()
	if testing.Short() {
		t.Skip("builds two home routers and moves large files")
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	needTools(t)
	id := os.Getpid() % 100000
	star := &starNet{t: t} // for addNS
	ns := func(role string) string {
		name := fmt.Sprintf("meshfs-%s-%d", role, id)
		star.addNS(name)
		return name
	}
	inet := &homeRouter{testNet: &testNet{t: t}, router: ns("inet")}
	inet.in(inet.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	h := &twoHomes{t: t, pub: ns("alice")}
	inet.pair(fmt.Sprintf("mn%da", id), natInetIP(0), h.pub, natFarIP(0))
	inet.ip("-n", h.pub, "route", "add", "default", "via", natInetIP(0))
	for i := 1; i <= 2; i++ {
		r := &homeRouter{testNet: inet.testNet, router: ns(fmt.Sprint("r", i)), home: ns(fmt.Sprint("h", i)),
			extDev: fmt.Sprintf("mn%de%d", id, i), intDev: fmt.Sprintf("mn%di%d", id, i)}
		r.pair(r.extDev, natFarIP(i), inet.router, natInetIP(i))
		r.ip("-n", r.router, "route", "add", "default", "via", natInetIP(i))
		r.pair(r.intDev, natHomeIP(i, 1), r.home, natHomeIP(i, 2))
		r.ip("-n", r.home, "route", "add", "default", "via", natHomeIP(i, 1))
		r.in(r.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		r.nft(natRules(r.extDev, r.intDev, randomPorts, udp))
		t.Cleanup(func() {
			exec.Command("ip", "netns", "exec", r.router, "nft", "delete", "table", "inet", natTable).Run()
		})
		h.homes[i] = r
	}
	return h
}

// natRules is a home router's table: masquerade out of ext, forward only
// from intDev or for a known connection, no new connection to the router
// from outside; those from the other home are counted. Without udp, UDP
// is dropped both ways, as on networks that block it: meshfs must punch
// over TCP. With udp, UDP passes and TCP from home goes to alice only:
// meshfs must punch over UDP.
func natRules(ext, intDev string, randomPorts, udp bool) string {
	masquerade := "masquerade"
	if randomPorts {
		masquerade += " fully-random"
	}
	block := "meta l4proto udp drop"
	if udp {
		block = fmt.Sprintf("iifname %q meta l4proto tcp ip daddr != %s drop", intDev, natFarIP(0))
	}
	return fmt.Sprintf(`table inet %s {
  chain postrouting { type nat hook postrouting priority 100; policy accept; oifname %q %s; }
  chain forward {
    type filter hook forward priority 0; policy drop;
    %[7]s
    ct state established,related accept
    iifname %[4]q accept
  }
  chain input {
    type filter hook input priority 0; policy accept;
    iifname %[5]q ct state new ip saddr %[6]s drop
    iifname %[5]q ct state new counter drop
  }
}
`, natTable, ext, masquerade, intDev, ext, natFarIP(0), block)
}

// dialsDropped is how many packets opening a connection (SYNs, retries
// included) from the other home router i has dropped so far: dials and
// punches that missed. Those from alice are not counted.
func (h *twoHomes) dialsDropped(i int) int {
	h.t.Helper()
	r := h.homes[i]
	m := dropCounter.FindStringSubmatch(r.in(r.router, "nft", "list", "chain", "inet", natTable, "input"))
	if m == nil {
		h.t.Fatalf("no counter in router %d's input chain", i)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// startAlice starts alice on her public address.
func (h *twoHomes) startAlice(c *cluster) *node {
	h.t.Helper()
	return c.startIn(h.pub, "alice", "--no-fuse", "--port-mapping=off", "--listen", natFarIP(0)+":0")
}

// joinHome starts name in home i, listening on every address (as with
// --listen PORT), and joins through alice's public address with a fresh
// invite; it waits until the two are connected.
func (h *twoHomes) joinHome(c *cluster, i int, name string, alice *node) *node {
	h.t.Helper()
	n := c.startIn(h.homes[i].home, name, "--no-fuse", "--port-mapping=off", "--listen", "0.0.0.0:0",
		"--join", alice.addr, "--invite", alice.invite())
	n.waitConnected(alice)
	alice.waitConnected(n)
	return n
}

// trio starts alice, bob in home 1 and carol in home 2.
func (h *twoHomes) trio(c *cluster) (alice, bob, carol *node) {
	h.t.Helper()
	alice = h.startAlice(c)
	return alice, h.joinHome(c, 1, "bob", alice), h.joinHome(c, 2, "carol", alice)
}

// peerIs checks a status entry for other: its state (a leading "!" means
// any state but that one), path ("punched (quic)" names the transport
// too) and, when given, the members it is reachable through.
func peerIs(other, state, path string, through ...string) func(nodeStatus) error {
	return func(st nodeStatus) error {
		p := st.peer(other)
		wrongState := p.State != state
		if not, ok := strings.CutPrefix(state, "!"); ok {
			wrongState = p.State == not
		}
		got := p.Path
		if _, ok := strings.CutPrefix(path, "punched ("); ok && p.Path == "punched" {
			got = "punched (" + p.Transport + ")"
		}
		if wrongState || got != path || (through != nil && !slices.Equal(p.Through, through)) {
			return fmt.Errorf("status for %s: state %q path %q through %q, want state %s path %q through %q",
				other, p.State, got, p.Through, state, path, through)
		}
		return nil
	}
}

// checkPeer fails t (not at once) unless n's status for other passes
// peerIs within the given time, and says how long it took.
func checkPeer(t *testing.T, n *node, within time.Duration, other, state, path string, through ...string) {
	t.Helper()
	start := time.Now()
	if err := waitStatusWithin(n, within, peerIs(other, state, path, through...)); err != nil {
		t.Errorf("%s: %v", n.name, err)
		return
	}
	t.Logf("%s's status: %s %s %s %v, after %v", n.name, other, state, path, through,
		time.Since(start).Round(time.Millisecond))
}

// peersPath is the PATH column of n's peers-file line for other ("direct",
// "punched (quic)", "through alice", "-"), or "" when it has no such line.
func peersPath(n *node, other string) string {
	data, _ := os.ReadFile(n.path("peers"))
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) < 4 || f[0] != other:
		case f[3] == "through" && len(f) > 4:
			return "through " + f[4]
		case f[3] == "punched" && len(f) > 4 && strings.HasPrefix(f[4], "("):
			return "punched " + f[4]
		default:
			return f[3]
		}
	}
	return ""
}

// checkPeersPath fails t unless n's peers file shows want in the PATH
// column of other's line.
// The file is rewritten when its text changes, a moment after the status
// does, so it is polled.
func checkPeersPath(t *testing.T, n *node, other, want string) {
	t.Helper()
	err := testutil.WaitFor(10*time.Second, func() error {
		if got := peersPath(n, other); got != want {
			return fmt.Errorf("%s's peers file: PATH of %s is %q, want %q; line %q", n.name, other, got, want, n.peerLine(other))
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// exchange has bob and carol each put a 50 MiB file in the outbox and say
// two lines, and waits until each has the other's file verified in
// inbox/<sender>/ and the other's lines; waitVerified logs the times.
func exchange(t *testing.T, bob, carol *node) {
	t.Helper()
	start := time.Now()
	bf := putRandomFile(t, bob, "from-bob.bin", 50<<20)
	cf := putRandomFile(t, carol, "from-carol.bin", 50<<20)
	waitFiles(t, 3*time.Minute, start, "50 MiB files both ways",
		fileWant{"bob's at carol", carol.path("inbox", "bob", bf.rel), bf},
		fileWant{"carol's at bob", bob.path("inbox", "carol", cf.rel), cf})
	bobs, carols := chatMarkers(t, "bob", 2), chatMarkers(t, "carol", 2)
	said := time.Now()
	for i := range bobs {
		sayLine(t, bob, bobs[i])
		sayLine(t, carol, carols[i])
	}
	waitChat(t, time.Minute, "chat lines both ways",
		chatWant{carol, authored("bob", bobs)}, chatWant{bob, authored("carol", carols)})
	t.Logf("chat lines both ways arrived %v after the first was said", time.Since(said).Round(time.Millisecond))
}

// TestTwoHomesPunched: bob and carol, each behind a home router that
// keeps ports (plain masquerade) and drops UDP, get a direct connection
// by TCP hole punching through alice's introduction, move 50 MiB each
// way and chat, and the connection stays the punched one.
func TestTwoHomesPunched(t *testing.T) {
	h := newTwoHomes(t, false)
	c := newCluster(t)
	alice, bob, carol := h.trio(c)

	checkPeer(t, bob, time.Minute, "carol", "connected", "punched (tcp)")
	checkPeer(t, carol, 10*time.Second, "bob", "connected", "punched (tcp)")
	checkPeersPath(t, bob, "carol", "punched (tcp)")
	exchange(t, bob, carol)
	logSent(t, "punched", []*node{alice, bob, carol})
	t.Logf("bob's router dropped %d SYNs from carol's home, carol's %d from bob's",
		h.dialsDropped(1), h.dialsDropped(2))
	for _, p := range [][2]*node{{bob, carol}, {carol, bob}} {
		if err := peerIs(p[1].name, "connected", "punched (tcp)")(mustStatus(t, p[0])); err != nil {
			t.Errorf("after the transfers, %s: %v", p[0].name, err)
		}
	}
}

// TestTwoHomesPunchedQUIC: the same homes, but the routers pass UDP like
// any NAT and drop TCP from home to anyone but alice, so TCP punching
// cannot work. bob and carol learn their outside UDP addresses from
// alice's STUN answers and meet over QUIC through her introduction. Then
// alice stops, so the punched connection alone carries what follows: a
// 50 MiB file each way and chat. (With alice up, sync lets a member that
// is receiving a file pass it on, so which path a file takes is sync's
// choice; TestTwoHomesPunched logs it.)
func TestTwoHomesPunchedQUIC(t *testing.T) {
	h := newTwoHomesWith(t, false, true)
	c := newCluster(t)
	alice := h.startAlice(c)
	bob := h.joinHome(c, 1, "bob", alice)
	start := time.Now()
	carol := h.joinHome(c, 2, "carol", alice)

	checkPeer(t, bob, time.Minute, "carol", "connected", "punched (quic)")
	checkPeer(t, carol, 10*time.Second, "bob", "connected", "punched (quic)")
	t.Logf("bob and carol punched over quic %v after carol was started", time.Since(start).Round(time.Millisecond))
	checkPeersPath(t, bob, "carol", "punched (quic)")
	if t.Failed() {
		return
	}
	if err := alice.stop(os.Interrupt); err != nil {
		t.Fatalf("stop alice: %v", err)
	}
	checkPeer(t, bob, 30*time.Second, "alice", "!connected", "")
	before := [2]uint64{mustSent(t, bob, "carol"), mustSent(t, carol, "bob")}
	exchange(t, bob, carol)
	logSent(t, "punched over quic", []*node{bob, carol})
	for i, p := range [][2]*node{{bob, carol}, {carol, bob}} {
		if d := mustSent(t, p[0], p[1].name) - before[i]; d < 50<<20 {
			t.Errorf("%s sent %s %.1f MiB over the punched connection, want the 50 MiB file", p[0].name, p[1].name, mib(d))
		}
		if err := peerIs(p[1].name, "connected", "punched (quic)")(mustStatus(t, p[0])); err != nil {
			t.Errorf("after the transfers, %s: %v", p[0].name, err)
		}
	}
}

// mustSent is how many bytes n has sent to member name.
func mustSent(t *testing.T, n *node, name string) uint64 {
	t.Helper()
	sent, err := sentBytesTo(n, name)
	if err != nil {
		t.Fatal(err)
	}
	return sent
}

// TestTwoHomesSymmetricNAT: the same homes behind routers that give each
// connection a random external port. bob and carol never connect, and
// files and lines still arrive both ways through alice; each shows the
// other relayed through alice.
func TestTwoHomesSymmetricNAT(t *testing.T) {
	h := newTwoHomes(t, true)
	c := newCluster(t)
	alice, bob, carol := h.trio(c)
	apart := watchApart(t, bob, carol)

	checkPeer(t, bob, time.Minute, "carol", "!connected", "relayed", "alice")
	checkPeer(t, carol, 10*time.Second, "bob", "!connected", "relayed", "alice")
	checkPeersPath(t, bob, "carol", "through alice")
	exchange(t, bob, carol)
	logSent(t, "symmetric", []*node{alice, bob, carol})
	if met := apart(); met != "" {
		t.Errorf("bob and carol met directly behind symmetric NATs: %s", met)
	}
	for _, p := range [][2]*node{{bob, carol}, {carol, bob}} { // also before the watch began
		if l := connectedLine(p[0], p[1].name); l != "" {
			t.Errorf("%s connected to %s directly behind symmetric NATs: %s", p[0].name, p[1].name, l)
		}
	}
	if d1, d2 := h.dialsDropped(1), h.dialsDropped(2); d1+d2 == 0 {
		t.Errorf("the routers dropped no SYN from the other home: bob and carol never tried to meet, so the test proved nothing")
	} else {
		t.Logf("bob's router dropped %d SYNs from carol's home, carol's %d from bob's", d1, d2)
	}
}

// watchApart polls a's and b's peers files in the background until the
// returned stop is called (or the test ends) and stop returns the first
// line where either showed the other connected, or "".
func watchApart(t *testing.T, a, b *node) (stop func() string) {
	done, result := make(chan struct{}), make(chan string, 1)
	go func() {
		met := ""
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, p := range [][2]*node{{a, b}, {b, a}} {
				if l := p[0].peerLine(p[1].name); met == "" && isConnected(l) {
					met = fmt.Sprintf("at %s, %s showed %s connected: %q", time.Now().Format("15:04:05.000"),
						p[0].name, p[1].name, l)
				}
			}
			select {
			case <-done:
				result <- met
				return
			case <-tick.C:
			}
		}
	}()
	stop = sync.OnceValue(func() string { close(done); return <-result })
	t.Cleanup(func() { stop() })
	return stop
}

// connectedLine is the first "peer connected" line of n's log for member
// other, or "".
func connectedLine(n *node, other string) string {
	for _, l := range strings.Split(n.log.String(), "\n") {
		if strings.Contains(l, `msg="peer connected"`) && strings.Contains(l, " member="+other+" ") {
			return l
		}
	}
	return ""
}

// mustStatus is n's status; it fails t when there is none.
func mustStatus(t *testing.T, n *node) nodeStatus {
	t.Helper()
	st, err := n.status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRoaming: bob, at home behind a 40 Mbit/s link, is receiving a
// 60 MiB file from alice when his address changes. He is connected to
// alice again within 15 s, in the same process, and the file arrives
// whole with far less than a second copy's worth of bytes received.
func TestRoaming(t *testing.T) {
	h := newTwoHomes(t, false)
	home := h.homes[1]
	c := newCluster(t)
	alice := h.startAlice(c)
	bob := h.joinHome(c, 1, "bob", alice)
	home.in(home.router, "tc", "qdisc", "add", "dev", home.intDev, "root", "tbf",
		"rate", "40mbit", "burst", "256kb", "latency", "50ms")

	start := time.Now()
	f := putRandomFile(t, alice, "roaming.bin", 60<<20)
	held := waitReceiving(t, bob, f.rel, 20<<20)
	pid := bob.cmd.Process.Pid
	dev := home.intDev + "p" // bob's end of the pair
	moved := time.Now()
	home.ip("-n", home.home, "addr", "del", natHomeIP(1, 2)+"/24", "dev", dev)
	home.ip("-n", home.home, "addr", "add", natHomeIP(1, 3)+"/24", "dev", dev)
	home.ip("-n", home.home, "route", "add", "default", "via", natHomeIP(1, 1))
	t.Logf("bob moved from %s to %s with %d MiB of %d held, %v after the file was written",
		natHomeIP(1, 2), natHomeIP(1, 3), held>>20, f.size>>20, moved.Sub(start).Round(time.Millisecond))

	for _, p := range [][2]*node{{bob, alice}, {alice, bob}} {
		err := waitStatusWithin(p[0], 15*time.Second, func(st nodeStatus) error {
			if q := st.peer(p[1].name); q.State != "connected" || !q.Since.After(moved) {
				return fmt.Errorf("%s: %s %s (since %v), want a connection opened after the move at %v",
					p[0].name, p[1].name, q.State, q.Since.Format(time.StampMilli), moved.Format(time.StampMilli))
			}
			return nil
		})
		if err != nil {
			t.Errorf("no new connection within 15 s of the move: %v", err)
		} else {
			t.Logf("%s has a new connection to %s %v after the move", p[0].name, p[1].name, time.Since(moved).Round(time.Millisecond))
		}
	}
	waitFiles(t, 3*time.Minute, start, "alice's file at bob across the move",
		fileWant{"at bob", bob.path("inbox", "alice", f.rel), f})
	if done, err := bob.exited(); done || bob.cmd.Process.Pid != pid {
		t.Errorf("bob's process (pid %d) did not live through the move: exited %v (%v)", pid, done, err)
	}
	if n := len(listenLine.FindAllString(bob.out.String(), -1)); n != 1 {
		t.Errorf("bob printed his banner %d times, want once: he started again", n)
	}
	// Resuming costs the block in flight at the move; starting over costs
	// the held part again.
	st := mustStatus(t, bob).peer("alice")
	got := st.Received
	t.Logf("bob's connection to alice opened %v after the move; he received %.2f MiB from alice for the %d MiB file (%.1f MiB held at the move)",
		st.Since.Sub(moved).Round(time.Millisecond), mib(got), f.size>>20, mib(uint64(held)))
	if limit := uint64(f.size + held/2); got >= limit {
		t.Errorf("bob received %.1f MiB from alice, want < %.1f MiB (file + half of what he held): the transfer started over",
			mib(got), mib(limit))
	}
}
