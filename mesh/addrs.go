package mesh

import (
	"net"
	"slices"
)

// Addresses is what a node knows of its own addresses.
type Addresses struct {
	// Listen is the actual listen address ("[::]:8001" when listening on
	// every interface).
	Listen string
	// Local lists this machine's non-loopback interface addresses with the
	// listen port: where members on the same networks reach it.
	Local []string
	// Observed lists the addresses connected members see this node at, as
	// they told it in HELLO. Where a member dialed this node it is the
	// address that worked; where this node dialed, the port is the one its
	// NAT (if any) chose for that connection.
	Observed []string
	// Mapped is the router's forwarded address (Node.SetMapped), "" for none.
	Mapped string
	// Advertised is what this node announces to members: Mapped first,
	// then the configured or actual listen addresses.
	Advertised []string
}

// Addresses returns this node's addresses; empty before Start.
func (n *Node) Addresses() Addresses {
	if n.ln == nil {
		return Addresses{}
	}
	a := Addresses{Listen: n.ln.Addr().String(), Advertised: n.advertised()}
	a.Local = localAddrs(a.Listen)
	n.mu.Lock()
	a.Mapped = n.mapped
	for _, p := range n.peers {
		if p.observed != "" && !slices.Contains(a.Observed, p.observed) {
			a.Observed = append(a.Observed, p.observed)
		}
	}
	n.mu.Unlock()
	slices.Sort(a.Observed)
	return a
}

// Dialable lists addresses another machine may reach this node at, best
// first and without repeats: the mapped port, the addresses members
// dialed successfully (observed with the listen port), the configured
// advertised addresses, then the local ones. An invite carries them.
func (a Addresses) Dialable() []string {
	_, port, _ := net.SplitHostPort(a.Listen)
	var out []string
	add := func(addr string) {
		host, _, err := net.SplitHostPort(addr)
		ip := net.ParseIP(host)
		if err == nil && host != "" && (ip == nil || !ip.IsUnspecified()) && !slices.Contains(out, addr) {
			out = append(out, addr)
		}
	}
	add(a.Mapped)
	for _, o := range a.Observed {
		if _, p, _ := net.SplitHostPort(o); p == port {
			add(o)
		}
	}
	for _, s := range [][]string{a.Advertised, a.Local} {
		for _, addr := range s {
			add(addr)
		}
	}
	return out[:min(len(out), maxAddrs)]
}

// localAddrs pairs each non-loopback interface address with listen's port,
// or returns listen itself when it names one host.
func localAddrs(listen string) []string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return []string{listen}
	}
	ifAddrs, _ := net.InterfaceAddrs()
	var out []string
	for _, a := range ifAddrs {
		ipn, ok := a.(*net.IPNet)
		if ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			out = append(out, net.JoinHostPort(ipn.IP.String(), port))
		}
	}
	return out
}

// SetMapped records the address at which the router forwards this node's
// listen port ("" when the mapping went) and tells every connected member
// at once: its PEERS lists this node's own entry with the new addresses.
func (n *Node) SetMapped(addr string) error {
	if addr != "" {
		if err := validateAddr(addr); err != nil {
			return err
		}
	}
	n.mu.Lock()
	changed := n.mapped != addr
	n.mapped = addr
	n.mu.Unlock()
	if changed && n.ln != nil {
		n.refreshRecord()
		n.pushPeers(nil)
	}
	return nil
}

// selfEntry is this node's own PEERS entry: its certificate, the
// addresses it advertises now and its signed record.
func (n *Node) selfEntry() (peerEntry, bool) {
	addrs := n.advertised()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ident.cert == nil {
		return peerEntry{}, false
	}
	return peerEntry{ID: n.self, Cert: n.ident.cert.Raw, Addrs: addrs, Record: n.ownRec.wire()}, true
}

// updateSender takes the addresses a member lists for itself in its PEERS
// (the connection already proved who it is); an unspecified host is
// replaced by the one the connection comes from, as in HELLO. It reports
// a change.
func (n *Node) updateSender(from *peer, addrs []string) bool {
	addrs = resolveAddrs(addrs, from.conn.RemoteAddr())
	if len(addrs) == 0 {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if slices.Equal(from.addrs, addrs) {
		return false
	}
	from.addrs = addrs
	if m := n.roster[from.id]; m != nil {
		m.Addrs = addrs
	}
	return true
}
