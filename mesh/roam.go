package mesh

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/netip"
	"slices"
	"time"
)

// Roaming: a laptop that changes network (its address goes away, DHCP
// hands it a new one, a VPN comes up) must be reachable again within
// about 15 s, without a restart. A TCP connection bound to an address
// that no longer exists stalls silently until its read deadline, tens of
// seconds, so this node acts on the change itself: the address watcher
// (netwatch_*.go) calls addrsChanged, which closes what cannot work,
// redials at once, tells members the new addresses, and probes what may
// have died. The other end lets the redial in (register, replaceAfter).
const (
	// replaceAfter is how old a connection must be for a new one from
	// the same remote session to replace it (register).
	replaceAfter = 5 * time.Second
	// probeWait is how long a probed connection has to show any frame
	// before it is closed.
	probeWait = 5 * time.Second
	// pollEvery is how often the portable watcher compares addresses.
	pollEvery = 10 * time.Second
)

// Reasons a roaming connection is closed.
var (
	errAddrGone    = errors.New("local address went away")
	errProbeFailed = errors.New("no answer to a probe after an address change")
)

// ipSet is a set of this machine's addresses (4in6 unmapped).
type ipSet map[netip.Addr]bool

// interfaceIPs is the default Node.localIPs: every interface address.
func interfaceIPs() (ipSet, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	set := ipSet{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				set[ip.Unmap()] = true
			}
		}
	}
	return set, nil
}

// localIP is the local address a connection is bound to; false for one
// that is not IP (net.Pipe in tests).
func localIP(c net.Conn) (netip.Addr, bool) {
	ta, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	return ip.Unmap(), ok
}

// addrsChanged handles a change of this machine's addresses or routes:
// connections bound to an address that went away are closed at once, the
// others are probed, and when the address set changed every member is
// redialed now and told our addresses. It runs on the watcher goroutine.
func (n *Node) addrsChanged() {
	ips, err := n.localIPs()
	if err != nil {
		n.log.Warn("local addresses not read", "err", err,
			"fix", "nothing: connections recover at their read deadline instead")
		return
	}
	n.mu.Lock()
	peers := slices.Collect(maps.Values(n.peers))
	changed := !maps.Equal(ips, n.lastIPs)
	n.lastIPs = ips
	n.mu.Unlock()
	var live []*peer
	for _, p := range peers {
		if !n.dropIfGone(p, ips) {
			live = append(live, p)
		}
	}
	n.startProbe(live)
	if changed || len(live) < len(peers) {
		n.forgetOutside() // the next member we dial tells us the new one
		n.redialNow()
		n.refreshRecord() // sign the new addresses before telling members
		n.pushPeers(nil)
	}
}

// dropIfGone closes p if its local address is not in ips; it reports
// whether it did.
func (n *Node) dropIfGone(p *peer, ips ipSet) bool {
	ip, ok := localIP(p.conn)
	if !ok || ips[ip] {
		return false
	}
	p.log.Info("local address went away; reconnecting", "local", ip.String())
	p.close(errAddrGone) // no BYE: nothing sent from a vanished address arrives
	return true
}

// redialNow cancels the dials under way and resets every member's redial
// schedule, then wakes the dial loop: a dial started on the old network
// (a SYN from a vanished address waits out HandshakeTimeout) or one that
// failed there and backs off (up to RedialMax) must not delay the first
// dial on the new one.
func (n *Node) redialNow() {
	n.mu.Lock()
	n.dialEnd()
	n.dialCtx, n.dialEnd = context.WithCancel(n.ctx)
	for _, ds := range n.dials {
		if !ds.busy {
			ds.backoff, ds.next = 0, time.Time{}
		}
	}
	n.mu.Unlock()
	n.wake()
}

// dialContext is the context of a dial started now; the next address
// change cancels it.
func (n *Node) dialContext() context.Context {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dialCtx
}

// startProbe checks, on a goroutine owned by the node, that each of peers
// still carries frames: a route change or NAT rebinding can kill a
// connection whose local address is still here. At most one probe runs;
// a change during it is covered by the regular keepalive.
func (n *Node) startProbe(peers []*peer) {
	if len(peers) == 0 || !n.probing.CompareAndSwap(false, true) {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		n.probing.Store(false)
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.probing.Store(false)
		n.probe(peers)
	}()
}

// probe sends each of peers a PING and closes those from which nothing
// at all arrives within probeWait. The remote answers at most one PING
// per PingInterval/10 (handlePing), so the probe's PING goes out half as
// long again after our last one: a PONG to that one, maybe still in
// flight, must not swallow the probe's answer.
func (n *Node) probe(peers []*peer) {
	gap := n.cfg.PingInterval / 10 * 3 / 2
	var wait time.Duration
	for _, p := range peers {
		wait = max(wait, time.Until(time.Unix(0, p.lastPing.Load()).Add(gap)))
	}
	if !n.sleep(wait) {
		return
	}
	sent := time.Now().UnixNano()
	for _, p := range peers {
		p.trySend(p.pingFrame())
	}
	if !n.sleep(n.probeWait) {
		return
	}
	for _, p := range peers {
		if !p.isClosed() && p.lastSeen.Load() < sent {
			p.log.Info("connection silent after an address change; reconnecting", "waited", n.probeWait)
			p.close(errProbeFailed)
		}
	}
}

// sleep waits d, or less if the node closes; it reports whether the node
// is still open.
func (n *Node) sleep(d time.Duration) bool {
	if d <= 0 {
		return n.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-n.ctx.Done():
		return false
	}
}

// pollAddrs is the portable watcher: it compares the address set every
// pollEvery until Close and reports a change. It also backs the Linux
// watcher when a netlink socket cannot be opened.
func (n *Node) pollAddrs() {
	defer n.wg.Done()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		ips, err := n.localIPs()
		n.mu.Lock()
		same := err == nil && maps.Equal(ips, n.lastIPs)
		n.mu.Unlock()
		if !same {
			n.addrsChanged()
		}
	}
}
