package mesh

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v3"
	"github.com/quic-go/quic-go"
)

// The UDP path. A node listening on TCP also binds UDP on the same port
// and hands the socket to one quic.Transport: QUIC packets go to punched
// connections (quic.go), everything else to stunLoop, which answers STUN
// Binding requests (RFC 8489) with the address they came from and matches
// Binding responses to the requests this node sent. A node learns its
// outside UDP address (its server-reflexive candidate, in ICE's words) by
// asking a member it dialed, at the same port as that member's TCP
// listener, and tells its members in CANDIDATES; an introducer passes
// them on in PUNCH. During a punch both sides send Binding requests to
// each other's candidates (ICE-style connectivity checks): each opens the
// sender's NAT mapping, and a response proves the path works both ways.
const (
	// stunWait is how long a Binding request waits for its response, and
	// stunTries how many are sent when learning our outside address.
	stunWait  = 500 * time.Millisecond
	stunTries = 3
	// stunAnswerEvery is the least gap between two answers to one source
	// address, and stunAnswersPerSec the cap over all sources: a
	// responder must not be a reflector anyone can aim.
	stunAnswerEvery   = 50 * time.Millisecond
	stunAnswersPerSec = 200
	// stunMaxSources caps the per-source rate-limit table.
	stunMaxSources = 4096
	// stunMaxWaits caps the Binding requests waiting for an answer.
	stunMaxWaits = 256
	// candidateFresh is how long a learned outside address is trusted
	// before the next connection to a member we dialed asks again.
	candidateFresh = time.Minute
	// maxCandidates caps the UDP addresses in CANDIDATES and PUNCH.
	maxCandidates = 4
	// stunPacket is the largest packet stunLoop reads; a STUN message
	// this node sends or answers is well under it.
	stunPacket = 512
)

// udpPath is a node's UDP socket with its QUIC transport and STUN state.
type udpPath struct {
	// Immutable after startUDP.
	tr   *quic.Transport
	ln   *quic.Listener
	port int

	asking atomic.Bool // a discovery runs: one at a time, its result goes to every member

	mu       sync.Mutex
	waits    map[[stun.TransactionIDSize]byte]stunWaiter // Binding requests sent
	expected map[PeerID]chan *quic.Conn                  // punches waiting for the other side's QUIC connection
	answered map[netip.Addr]time.Time                    // last answer per source IP
	second   time.Time                                   // start of the current second of answers
	answers  int                                         // answers in it
	outside  netip.AddrPort                              // our outside address, as a member we dialed sees it
	learned  time.Time                                   // when outside was learned
}

// stunWaiter is one Binding request waiting for its response: it is
// accepted only from the address it went to.
type stunWaiter struct {
	to netip.AddrPort
	ch chan stunResult
}

// stunResult is a Binding response: who answered, and where it saw us.
type stunResult struct {
	from, mapped netip.AddrPort
}

// startUDP binds UDP next to the TCP listener ln and starts the STUN and
// QUIC accept loops. A node that cannot bind it runs without: hole
// punching then uses TCP only.
func (n *Node) startUDP(ln net.Listener) {
	ta, ok := ln.Addr().(*net.TCPAddr)
	if !ok || n.cfg.Dial != nil {
		return
	}
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: ta.IP, Port: ta.Port, Zone: ta.Zone})
	if err != nil {
		n.log.Warn("no udp socket next to the listener; hole punching uses tcp only", "port", ta.Port, "err", err,
			"fix", "free that UDP port (another program holds it) for punching over QUIC; TCP punching still works")
		return
	}
	u := &udpPath{tr: &quic.Transport{Conn: uc}, port: ta.Port,
		waits: map[[stun.TransactionIDSize]byte]stunWaiter{}, expected: map[PeerID]chan *quic.Conn{},
		answered: map[netip.Addr]time.Time{}}
	if u.ln, err = u.tr.Listen(n.quicServerTLS(u), quicConfig()); err != nil {
		n.log.Warn("no quic listener; hole punching uses tcp only", "err", err,
			"fix", "nothing: TCP punching still works")
		u.tr.Close()
		uc.Close()
		return
	}
	// The transport keeps non-QUIC packets only once someone reads them:
	// a read that returns at once turns that on before Start returns.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	u.tr.ReadNonQUICPacket(done, nil)
	n.udp = u
	n.wg.Add(2)
	go n.stunLoop()
	go n.quicAcceptLoop()
}

// closeUDP stops the loops' sources; Close then waits for them.
func (n *Node) closeUDP() {
	if u := n.udp; u != nil {
		u.ln.Close()
		u.tr.Close()
		u.tr.Conn.Close()
	}
}

// stunLoop reads the socket's non-QUIC packets until the node closes:
// Binding requests are answered, Binding responses go to their waiter,
// anything else is dropped.
func (n *Node) stunLoop() {
	defer n.wg.Done()
	buf := make([]byte, stunPacket)
	for {
		k, from, err := n.udp.tr.ReadNonQUICPacket(n.ctx, buf)
		if err != nil {
			return // closed
		}
		src, ok := addrPortOf(from)
		if !ok || !stun.IsMessage(buf[:k]) {
			continue
		}
		m := &stun.Message{Raw: append([]byte(nil), buf[:k]...)}
		if m.Decode() != nil {
			continue
		}
		switch m.Type {
		case stun.BindingRequest:
			n.answerBinding(m, src)
		case stun.BindingSuccess:
			n.udp.deliver(m, src)
		}
	}
}

// answerBinding sends a Binding success response carrying src, when the
// rate limits allow.
func (n *Node) answerBinding(req *stun.Message, src netip.AddrPort) {
	if !n.udp.allowAnswer(src.Addr(), time.Now()) {
		return
	}
	resp, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: src.Addr().AsSlice(), Port: int(src.Port())})
	if err != nil {
		return
	}
	n.udp.tr.WriteTo(resp.Raw, net.UDPAddrFromAddrPort(src))
}

// allowAnswer is the responder's rate limit: one answer per source IP per
// stunAnswerEvery, stunAnswersPerSec in all.
func (u *udpPath) allowAnswer(ip netip.Addr, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if now.Sub(u.second) >= time.Second {
		u.second, u.answers = now, 0
	}
	if u.answers >= stunAnswersPerSec {
		return false
	}
	if last, ok := u.answered[ip]; ok && now.Sub(last) < stunAnswerEvery {
		return false
	}
	if len(u.answered) >= stunMaxSources {
		clear(u.answered)
	}
	u.answered[ip] = now
	u.answers++
	return true
}

// deliver hands a Binding response to the request it answers, if this
// node sent that request to the address it came from.
func (u *udpPath) deliver(m *stun.Message, src netip.AddrPort) {
	var xa stun.XORMappedAddress
	if xa.GetFrom(m) != nil {
		return
	}
	ip, ok := netip.AddrFromSlice(xa.IP)
	if !ok || xa.Port <= 0 || xa.Port > 65535 {
		return
	}
	u.mu.Lock()
	w, ok := u.waits[m.TransactionID]
	if ok && w.to == src {
		delete(u.waits, m.TransactionID)
	}
	u.mu.Unlock()
	if !ok || w.to != src {
		return
	}
	select {
	case w.ch <- stunResult{from: src, mapped: netip.AddrPortFrom(ip.Unmap(), uint16(xa.Port))}:
	default:
	}
}

// sendBinding sends one Binding request to to; its response goes to ch.
func (u *udpPath) sendBinding(to netip.AddrPort, ch chan stunResult) error {
	var id [stun.TransactionIDSize]byte
	rand.Read(id[:])
	m, err := stun.Build(stun.NewTransactionIDSetter(id), stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return err
	}
	u.mu.Lock()
	if len(u.waits) >= stunMaxWaits {
		u.mu.Unlock()
		return errors.New("too many stun requests waiting")
	}
	u.waits[id] = stunWaiter{to: to, ch: ch}
	u.mu.Unlock()
	time.AfterFunc(stunWait, func() { // an answer later than this is not wanted
		u.mu.Lock()
		delete(u.waits, id)
		u.mu.Unlock()
	})
	_, err = u.tr.WriteTo(m.Raw, net.UDPAddrFromAddrPort(to))
	return err
}

// discover asks the member at to (its listen port, over UDP) where it
// sees us, up to stunTries times.
func (u *udpPath) discover(ctx context.Context, to netip.AddrPort) (netip.AddrPort, error) {
	ch := make(chan stunResult, 1)
	for range stunTries {
		if err := u.sendBinding(to, ch); err != nil {
			return netip.AddrPort{}, err
		}
		select {
		case r := <-ch:
			return r.mapped, nil
		case <-time.After(stunWait):
		case <-ctx.Done():
			return netip.AddrPort{}, ctx.Err()
		}
	}
	return netip.AddrPort{}, errors.New("no stun answer")
}

// learnUDP runs after a member connection is registered. A connection we
// dialed over TCP ends at the member's listen port, where its UDP socket
// is too: ask it for our outside address unless we learned it lately.
// Then tell p our candidates (and, when they changed, every member). A
// member on this machine is not asked: it cannot see an outside address,
// and members on loopback are never punched to (mayPunch).
func (n *Node) learnUDP(p *peer) {
	u := n.udp
	if u == nil {
		return
	}
	u.mu.Lock()
	stale := time.Since(u.learned) >= candidateFresh
	u.mu.Unlock()
	to, ok := addrPortOf(p.conn.RemoteAddr())
	local := ok && to.Addr().IsLoopback() && !n.stunLoopback
	if !stale || !p.outbound || p.quic || !ok || local || !u.asking.CompareAndSwap(false, true) {
		n.sendCandidates(p)
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		u.asking.Store(false)
		return
	}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		defer u.asking.Store(false)
		ctx, cancel := context.WithTimeout(n.ctx, stunTries*stunWait+time.Second)
		defer cancel()
		mapped, err := u.discover(ctx, to)
		if err != nil {
			p.log.Debug("no outside udp address learned", "err", err)
			n.sendCandidates(p)
			return
		}
		u.mu.Lock()
		changed := mapped != u.outside
		u.outside, u.learned = mapped, time.Now()
		u.mu.Unlock()
		if !changed {
			n.sendCandidates(p)
			return
		}
		p.log.Debug("outside udp address learned", "outside", mapped.String())
		n.mu.Lock()
		peers := make([]*peer, 0, len(n.peers))
		for _, q := range n.peers {
			peers = append(peers, q)
		}
		n.mu.Unlock()
		for _, q := range peers {
			n.sendCandidates(q)
		}
	}()
}

// forgetOutside drops the learned outside address: the network changed.
func (n *Node) forgetOutside() {
	if u := n.udp; u != nil {
		u.mu.Lock()
		u.outside, u.learned = netip.AddrPort{}, time.Time{}
		u.mu.Unlock()
	}
}

// candidates are this node's UDP addresses as p can use them, none
// before a member answered our STUN request: the outside address it
// told us, then the local address of p's connection at our UDP port (for
// members behind the same NAT).
func (n *Node) candidates(p *peer) []string {
	u := n.udp
	if u == nil {
		return nil
	}
	var out []string
	u.mu.Lock()
	if u.outside.IsValid() {
		out = append(out, u.outside.String())
	}
	u.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	if local, ok := addrPortOf(p.conn.LocalAddr()); ok && !p.quic {
		host := netip.AddrPortFrom(local.Addr(), uint16(u.port)).String()
		if len(out) == 0 || out[0] != host {
			out = append(out, host)
		}
	}
	return out
}

// sendCandidates tells p our UDP candidates once a member answered our
// STUN request: without that answer UDP is likely blocked, and the
// punch goes straight to TCP. An introducer passes them on in PUNCH.
func (n *Node) sendCandidates(p *peer) {
	c := n.candidates(p)
	if len(c) == 0 {
		return
	}
	p.trySend(encodeFrame(frameCandidates, encodeAddrList(c)))
}

// addrPortOf is a UDP or TCP address as an unmapped netip.AddrPort.
func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		return ap, false
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return ap, ap.IsValid() && ap.Port() != 0
}
