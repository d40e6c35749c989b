package mesh

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/internal/safetext"
	"github.com/meshfs/meshfs/internal/wire"
)

// Discovery limits.
const (
	maxPeersEntries = 256  // entries in one PEERS frame
	maxRoster       = 1024 // known members kept; bounds what PEERS can add
)

// errBadEntry is a PEERS entry whose certificate does not prove membership.
var errBadEntry = errors.New("peers entry without a valid member certificate")

// member is one known member in the roster (persisted in peers.json).
type member struct {
	ID       PeerID    `json:"-"`
	IDText   string    `json:"id"`
	Name     string    `json:"name"`
	Addrs    []string  `json:"addrs,omitempty"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Cert is the member certificate (DER) that proved this ID: chains to
	// the mesh CA and its key hashes to ID. Only members with one are
	// listed by Peers and sent in PEERS; an entry without one (an old
	// peers.json) is a dial hint until the member connects.
	Cert []byte `json:"cert,omitempty"`
	// Record is the member's newest address record that verified against
	// Cert (record.go); nil when none reached this node.
	Record *addrRecord `json:"record,omitempty"`

	// Bytes moved on closed connections since start (not persisted).
	sent, recv uint64
	// key is Cert's public key once MemberKey parsed it, for keyCert
	// (not persisted): every record received is checked against it.
	key     ed25519.PublicKey
	keyCert []byte
}

func (m *member) info() PeerInfo {
	info := PeerInfo{ID: m.ID, Name: m.Name, State: Offline, LastSeen: m.LastSeen, Sent: m.sent, Received: m.recv,
		Anchor: m.Record.anchor()}
	if addrs := m.dialAddrs(); len(addrs) > 0 {
		info.Addr = addrs[0]
	}
	return info
}

// loadRoster reads peers.json; a missing file is an empty roster. Entries
// are validated as if a peer had sent them: the file is ours, but cheap to
// check. A certificate that no longer verifies (revoked, expired, another
// mesh) is dropped, leaving the entry a dial hint.
func loadRoster(dir string, pool *x509.CertPool, revs *revocationList) (map[PeerID]*member, error) {
	roster := map[PeerID]*member{}
	data, err := os.ReadFile(filepath.Join(dir, filePeers))
	if errors.Is(err, os.ErrNotExist) {
		return roster, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load roster: %w", err)
	}
	var list []*member
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("load roster: %s: %w", filePeers, err)
	}
	for _, m := range list {
		id, err := ParsePeerID(m.IDText)
		if err != nil {
			continue
		}
		m.ID, m.Name = id, safetext.Name(m.Name)
		m.Addrs = slices.DeleteFunc(m.Addrs, func(a string) bool { return validateAddr(a) != nil })
		if name, err := verifyEntry(id, m.Cert, pool, revs); err == nil {
			m.Name = name
		} else {
			m.Cert = nil
		}
		loadRecord(m)
		roster[id] = m
	}
	return roster, nil
}

// rosterSaveGap is the least time between two lazy saves of the member
// list (rosterLoop).
const rosterSaveGap = time.Second

// rosterChanged asks rosterLoop to save the member list. It never blocks.
func (n *Node) rosterChanged() {
	select {
	case n.rosterDirty <- struct{}{}:
	default: // a save is due already
	}
}

// rosterNow asks rosterLoop to save the member list without waiting for
// the gap: a member or an address the file lacks is what a restart needs
// to find the mesh again (a node killed a moment after a member joined
// would not know where it is). It never blocks; mu may be held.
func (n *Node) rosterNow() {
	select {
	case n.rosterUrgent <- struct{}{}:
	default:
	}
}

// rosterLoop saves the member list after connects, disconnects and
// address updates, at most once per rosterSaveGap: they come in bursts (a
// crowd joining changes the list thousands of times), each save is an
// fsync, and last-seen times only have to be roughly current. A new member
// or a new address (rosterNow) is saved at once, as are admissions and
// revocations; Close saves the rest.
func (n *Node) rosterLoop() {
	defer n.wg.Done()
	gap := time.NewTimer(rosterSaveGap)
	gap.Stop()
	defer gap.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.rosterDirty:
		case <-n.rosterUrgent:
		}
		n.saveRoster()
		gap.Reset(rosterSaveGap)
		select {
		case <-n.ctx.Done():
			return
		case <-gap.C:
		case <-n.rosterUrgent:
			gap.Stop()
			n.rosterChanged() // save now, and let what was dirty wait no longer
		}
	}
}

// saveRoster writes peers.json atomically. saveMu orders concurrent saves
// so that the last snapshot taken is the last one written.
func (n *Node) saveRoster() {
	n.saveMu.Lock()
	defer n.saveMu.Unlock()
	n.mu.Lock()
	list := make([]*member, 0, len(n.roster))
	for id, m := range n.roster {
		if p := n.peers[id]; p != nil {
			m.LastSeen = time.Unix(0, p.lastSeen.Load())
		}
		c := *m
		c.IDText = id.String()
		list = append(list, &c)
	}
	n.mu.Unlock()
	slices.SortFunc(list, func(a, b *member) int { return strings.Compare(a.IDText, b.IDText) })
	data, err := json.MarshalIndent(list, "", "  ")
	if err == nil {
		err = atomicfile.Write(filepath.Join(n.dir, filePeers), data, 0o600)
	}
	if err != nil {
		n.log.Warn("member list not saved", "err", err,
			"fix", "check free space and permissions of the state folder (--state)")
	}
}

// noteConnected records a live member in the roster (mu held). The TLS
// handshake verified its certificate, which the roster keeps so that PEERS
// can pass the proof on.
func (n *Node) noteConnected(p *peer) {
	m := n.roster[p.id]
	if m == nil {
		m = &member{ID: p.id}
		n.roster[p.id] = m
	}
	m.Name = p.name
	if len(p.addrs) > 0 && !slices.Equal(m.Addrs, p.addrs) || m.Cert == nil {
		n.rosterNow()
	}
	if len(p.addrs) > 0 {
		m.Addrs = p.addrs
	}
	if der := peerCertDER(p.conn); der != nil {
		m.Cert = der
	}
	m.LastSeen = time.Now()
	delete(n.dials, idKey(p.id))
}

// peerCertDER returns the verified leaf certificate of a member connection.
func peerCertDER(c net.Conn) []byte {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return nil
	}
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		return certs[0].Raw
	}
	return nil
}

// peerEntry is one PEERS entry: a member ID, the member certificate that
// proves it, and address hints. The display name is the certificate's.
type peerEntry struct {
	ID    PeerID
	Cert  []byte // DER
	Addrs []string
	// Linked says the sender has a live connection to the member: the
	// receiver learns whom it reaches through the sender, for PUNCH_REQ
	// and for showing how an unconnected member is reached.
	Linked bool
	// Record is the member's newest address record the sender holds, in
	// wire form (record.go), empty when it holds none. It starts with the
	// entry's ID; the rest is decoded only if it is newer than ours.
	Record []byte
}

// entryLinked is the flag bit of peerEntry.Linked.
const entryLinked = 1

func encodePeers(entries []peerEntry) []byte {
	var e wire.Encoder
	e.U16(0) // count, patched below
	count := 0
	for _, pe := range entries {
		var one wire.Encoder
		one.Raw(pe.ID[:])
		one.Blob(pe.Cert)
		one.U8(uint8(len(pe.Addrs)))
		for _, a := range pe.Addrs {
			one.Str(a)
		}
		var flags uint8
		if pe.Linked {
			flags |= entryLinked
		}
		one.U8(flags)
		one.Blob(pe.Record)
		if count == maxPeersEntries || len(e.B)+len(one.B) > capPeers {
			break // the rest is learned on a later exchange
		}
		e.Raw(one.B)
		count++
	}
	e.B[0], e.B[1] = byte(count>>8), byte(count)
	return e.B
}

func decodePeers(p []byte) ([]peerEntry, error) {
	d := wire.Decoder{B: p}
	n := int(d.U16())
	if n > maxPeersEntries {
		return nil, protocolError("peers list of %d entries", n)
	}
	var out []peerEntry
	for i := 0; i < n && d.Err() == nil; i++ {
		pe := peerEntry{ID: readPeerID(&d)}
		pe.Cert = d.Blob(maxCertLen)
		pe.Addrs = decodeAddrs(&d)
		flags := d.U8()
		if flags&^entryLinked != 0 {
			d.Fail(protocolError("peers entry flags %#x", flags))
		}
		pe.Linked = flags&entryLinked != 0
		pe.Record = decodeEntryRecord(&d, pe.ID)
		out = append(out, pe)
	}
	if err := finish(&d); err != nil {
		return nil, fmt.Errorf("decode peers: %w", err)
	}
	return out, nil
}

// decodeEntryRecord reads the record blob of the entry for id: empty, or
// one that starts with id and an issued-at. The rest is decoded and the
// signature checked by acceptRecord, only if the record is newer.
func decodeEntryRecord(d *wire.Decoder, id PeerID) []byte {
	b := d.Blob(maxRecordLen)
	if d.Err() != nil || len(b) == 0 {
		return nil
	}
	if len(b) < recordHeadLen || !bytes.Equal(b[:32], id[:]) {
		d.Fail(protocolError("address record that is not of the entry's member %s", id.Short()))
		return nil
	}
	return b
}

// verifyEntry checks that der is a member certificate of the mesh whose CA
// is in pool, not revoked, and for the key that hashes to id. It returns
// the display name the certificate carries.
func verifyEntry(id PeerID, der []byte, pool *x509.CertPool, revs *revocationList) (string, error) {
	if len(der) == 0 || pool == nil {
		return "", errBadEntry
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errBadEntry, err)
	}
	if peerIDOf(leaf) != id {
		return "", fmt.Errorf("%w: key does not hash to %s", errBadEntry, id.Short())
	}
	if err := verifyMemberCert(leaf, pool, revs); err != nil {
		return "", err
	}
	name := safetext.Name(leaf.Subject.CommonName)
	if name == "" {
		name = defaultName(id)
	}
	return name, nil
}

// peersPayload lists this node itself with the addresses it advertises
// now, then known members: connected ones with the listen addresses they
// advertised, offline ones with their last known addresses.
func (n *Node) peersPayload() []byte {
	return encodePeers(append(n.selfEntries(), n.rosterEntries()...))
}

// selfEntries is this node's own entry, when it has an address to
// advertise.
func (n *Node) selfEntries() []peerEntry {
	if self, ok := n.selfEntry(); ok {
		return []peerEntry{self}
	}
	return nil
}

// rosterEntries lists the verified roster, unordered.
func (n *Node) rosterEntries() []peerEntry {
	n.mu.Lock()
	defer n.mu.Unlock()
	entries := make([]peerEntry, 0, len(n.roster))
	for id, m := range n.roster {
		if n.revs.has(id) || m.Cert == nil {
			continue
		}
		pe := peerEntry{ID: id, Cert: m.Cert, Addrs: m.Addrs, Record: m.Record.wire()}
		if p := n.peers[id]; p != nil {
			pe.Addrs, pe.Linked = p.addrs, true
		}
		pe.Addrs = pe.Addrs[:min(len(pe.Addrs), maxAddrs)]
		entries = append(entries, pe)
	}
	return entries
}

// peersReply answers p's PEERS_REQ: this node first, then the other
// members in ID order from where the last answer to p stopped, wrapping
// around; the first answer on a connection starts at a random ID. A
// member list longer than one PEERS (maxPeersEntries) so reaches p whole
// within a few requests, and a member whose connections come and go is
// not told the same lowest IDs on each; answers that began anywhere left
// some members unknown to p for many discovery rounds.
func (n *Node) peersReply(p *peer) []byte {
	self, roster := n.selfEntries(), n.rosterEntries()
	byID := func(a, b peerEntry) int { return bytes.Compare(a.ID[:], b.ID[:]) }
	slices.SortFunc(roster, byID)
	from, found := slices.BinarySearchFunc(roster, peerEntry{ID: p.peersNext}, byID)
	if found {
		from++
	}
	entries := append(append(self, roster[from:]...), roster[:from]...)
	b := encodePeers(entries)
	if count := int(b[0])<<8 | int(b[1]); count > len(self) {
		p.peersNext = entries[count-1].ID
	}
	return b
}

// randomPeerID is where the answers to a new connection's PEERS_REQ
// begin (peersReply): anywhere.
func randomPeerID() (id PeerID) {
	for i := range id {
		id[i] = byte(rand.Uint32())
	}
	return id
}

// pushPeers sends PEERS to every connected member but p at once, so a new
// member is known (and dialed) everywhere without waiting for a timer.
func (n *Node) pushPeers(except *peer) {
	f := encodeFrame(framePeers, n.peersPayload())
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, q := range n.peers {
		if q != except {
			q.trySend(f)
		}
	}
}

// handlePeers merges a member's PEERS into the roster and dials new ones.
// An entry is added only with a member certificate for its ID (so a member
// cannot invent members); addresses stay hints, since a dial succeeds only
// if the ID proves itself in TLS. A certificate that fails to verify is a
// protocol error: an honest member only sends verified ones, and closing
// bounds the verification work one connection can cause.
func (n *Node) handlePeers(from *peer, payload []byte) error {
	entries, err := decodePeers(payload)
	if err != nil {
		return err
	}
	n.mu.Lock()
	pool, revs := n.ident.caPool, n.revs
	n.mu.Unlock()
	n.noteLinks(from, entries)
	changed := false
	var fresh []peerEntry
	for _, pe := range entries {
		if pe.ID == from.id {
			rc, err := n.senderRecord(from, pe)
			if err != nil {
				return err
			}
			changed = n.updateSender(from, pe.Addrs) || rc || changed
			continue
		}
		if pe.ID == n.self || pe.ID.IsZero() || revs.has(pe.ID) {
			continue
		}
		name, err := n.checkEntry(pe, pool, revs)
		if errors.Is(err, errRevoked) {
			continue // revoked on our list; the sender may learn it later
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrProtocol, err)
		}
		n.mu.Lock()
		isNew := false
		if n.peers[pe.ID] == nil && !n.revs.has(pe.ID) {
			isNew = n.roster[pe.ID] == nil
			changed = n.learn(pe, name) || changed
		}
		n.mu.Unlock()
		rc, err := n.acceptRecord(pe, func() (ed25519.PublicKey, error) { return keyOf(pe.ID, pe.Cert) })
		if err != nil {
			return err
		}
		changed = rc || changed
		if isNew {
			fresh = append(fresh, n.gossipEntry(pe))
		}
	}
	n.gossipMembers(from, fresh)
	if changed {
		from.log.Debug("members learned")
		n.rosterChanged()
		n.wake()
	}
	return nil
}

// senderRecord takes the record a member sends in its own entry, checked
// against the certificate its connection proved.
func (n *Node) senderRecord(from *peer, pe peerEntry) (bool, error) {
	return n.acceptRecord(pe, func() (ed25519.PublicKey, error) { return n.MemberKey(from.id) })
}

// checkEntry verifies an entry's certificate, skipping the work when the
// roster already holds the same verified bytes.
func (n *Node) checkEntry(pe peerEntry, pool *x509.CertPool, revs *revocationList) (string, error) {
	n.mu.Lock()
	m := n.roster[pe.ID]
	known := m != nil && m.Cert != nil && bytes.Equal(m.Cert, pe.Cert)
	var name string
	if known {
		name = m.Name
	}
	n.mu.Unlock()
	if known {
		return name, nil
	}
	return verifyEntry(pe.ID, pe.Cert, pool, revs)
}

// learn adds or updates an offline member whose certificate was verified
// and carries name (mu held); it reports a change.
func (n *Node) learn(pe peerEntry, name string) bool {
	m := n.roster[pe.ID]
	if m == nil {
		if len(n.roster) >= maxRoster {
			return false
		}
		m = &member{ID: pe.ID}
		n.roster[pe.ID] = m
		n.yieldDial(pe.ID)
	}
	if slices.Equal(m.Addrs, pe.Addrs) && m.Name == name && bytes.Equal(m.Cert, pe.Cert) {
		return false
	}
	m.Name, m.Cert = name, pe.Cert
	n.rosterNow()
	if len(pe.Addrs) > 0 {
		m.Addrs = pe.Addrs
		if ds := n.dials[idKey(pe.ID)]; ds != nil && !ds.busy {
			ds.next = time.Time{} // new addresses: try them now
		}
	}
	return true
}

// yieldDial delays our first dial to a newly learned member with a lower
// ID (mu held). Both ends learn of each other at the same moment; the tie-
// break keeps the lower ID's connection anyway, so letting it dial first
// saves a connection that would be replaced at once.
func (n *Node) yieldDial(id PeerID) {
	if bytes.Compare(id[:], n.self[:]) < 0 {
		n.dials[idKey(id)] = &dialState{next: time.Now().Add(max(n.cfg.RedialMin, 200*time.Millisecond))}
	}
}

// dialState is the redial schedule of one target (a member ID or a join hint).
type dialState struct {
	next    time.Time
	backoff time.Duration
	busy    bool
	done    bool // join hint that reached a member: not dialed again
}

func idKey(id PeerID) string     { return "id:" + id.String() }
func hintKey(addr string) string { return "addr:" + addr }

// dialTarget is one dial to start.
type dialTarget struct {
	key    string
	id     PeerID // zero for a join hint
	addrs  []string
	status *dialState
}

// wake makes the dial loop look for work now.
func (n *Node) wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// dialLoop owns redialing and periodic discovery until Close. Between
// rounds it sleeps until the next redial is due; a finished dial, a
// learned member or a lost connection wakes it sooner, so a mesh where
// every member is connected wakes it for discovery only.
func (n *Node) dialLoop() {
	defer n.wg.Done()
	tick := time.NewTimer(time.Hour)
	defer tick.Stop()
	discover := time.NewTicker(n.cfg.DiscoveryInterval)
	defer discover.Stop()
	for {
		n.trimExcess()
		n.startDials()
		tick.Stop()
		if next, ok := n.nextDial(); ok {
			tick.Reset(max(time.Until(next), 20*time.Millisecond))
		}
		select {
		case <-n.ctx.Done():
			return
		case <-n.kick:
		case <-tick.C:
		case <-discover.C:
			n.requestPeers()
			n.refreshAndPush() // an interface address may have changed (roaming)
		}
	}
}

// discoveryFanout is how many connected members one discovery round
// asks: news spreads by push when it happens, so the round only repairs
// what a push missed, and asking every member would cost each round a
// member list per connection.
const discoveryFanout = 2

// requestPeers sends PEERS_REQ to discoveryFanout connected members
// picked at random (map order is random, and differs each round).
func (n *Node) requestPeers() {
	f := encodeFrame(framePeersReq, nil)
	n.mu.Lock()
	defer n.mu.Unlock()
	asked := 0
	for _, p := range n.peers {
		if asked == discoveryFanout {
			return
		}
		if p.trySend(f) {
			asked++
		}
	}
}

// startDials starts every due dial that a free slot allows.
func (n *Node) startDials() {
	for _, t := range n.dueTargets() {
		select {
		case n.sem <- struct{}{}:
		default:
			n.mu.Lock()
			t.status.busy = false // no slot: next round
			n.mu.Unlock()
			continue
		}
		n.wg.Add(1)
		go n.dial(t)
	}
}

// nextDial is when the earliest scheduled redial is due, if any is.
func (n *Node) nextDial() (time.Time, bool) {
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	var next time.Time
	for _, ds := range n.dials {
		if ds.busy || ds.done || !ds.next.After(now) {
			continue // dialing (it wakes the loop when done), finished, or connected
		}
		if next.IsZero() || ds.next.Before(next) {
			next = ds.next
		}
	}
	return next, !next.IsZero()
}

// dueTargets collects (and marks busy) members and join hints to dial now.
func (n *Node) dueTargets() []dialTarget {
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []dialTarget
	if id, ok := n.adminToDialLocked(); ok { // an anchor's link to the admin comes before the budget
		if t, ok := n.due(idKey(id), now); ok {
			t.id, t.addrs = id, slices.Clone(n.roster[id].dialAddrs())
			out = append(out, t)
		}
	}
	budget := n.dialBudgetLocked()
	for _, id := range n.dialCandidatesLocked(now) {
		if len(out) >= budget {
			break
		}
		if t, ok := n.due(idKey(id), now); ok {
			t.id, t.addrs = id, slices.Clone(n.roster[id].dialAddrs())
			out = append(out, t)
		}
	}
	for _, a := range n.cfg.Join {
		if n.knownAddr(a) {
			continue // a member's address: dialed (with its ID) above
		}
		if t, ok := n.due(hintKey(a), now); ok {
			t.addrs = []string{a}
			out = append(out, t)
		}
	}
	return out
}

// handshaking reports whether a connection this node dialed to addr is in
// its handshake. A second dial to the same member would cross it, and the
// connection dropped by the tie-break loses what was queued on it.
func (n *Node) handshaking(addr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for raw, ip := range n.pending {
		if ip == "" && raw.RemoteAddr().String() == addr {
			return true
		}
	}
	return false
}

// knownAddr reports whether a roster member has address a (mu held).
func (n *Node) knownAddr(a string) bool {
	for _, m := range n.roster {
		if slices.Contains(m.Addrs, a) || m.Record != nil && slices.Contains(m.Record.Addrs, a) {
			return true
		}
	}
	return false
}

// due returns the state of key if it should be dialed now, marking it busy.
func (n *Node) due(key string, now time.Time) (dialTarget, bool) {
	ds := n.dials[key]
	if ds == nil {
		ds = &dialState{}
		n.dials[key] = ds
	}
	if ds.busy || ds.done || now.Before(ds.next) {
		return dialTarget{}, false
	}
	ds.busy = true
	return dialTarget{key: key, status: ds}, true
}

// dial tries a target's addresses in order and reschedules it.
func (n *Node) dial(t dialTarget) {
	defer n.wg.Done()
	defer n.wake() // after the slot is free: a target may wait for it
	defer func() { <-n.sem }()
	var dialing atomic.Pointer[string] // the address being dialed
	if !t.id.IsZero() {
		// A member's address answers a SYN within a round trip when it
		// answers at all; one behind a NAT leaves the dial hanging until
		// HandshakeTimeout. Ask for an introduction meanwhile, unless the
		// connection is up and only its handshake is slow (a busy node).
		intro := time.AfterFunc(punchAfter, func() {
			if a := dialing.Load(); a != nil && mayPunch(*a) && !n.handshaking(*a) {
				n.askIntroduction(t.id)
			}
		})
		defer intro.Stop()
	}
	var err error
	ctx := n.dialContext()
	for _, a := range t.addrs {
		if n.handshaking(a) {
			err = nil // a Connect to that address is under way: let it finish
			break
		}
		dialing.Store(&a)
		if err = n.connect(ctx, a, t.id); err == nil {
			break
		}
	}
	if unreached(err, t.addrs) && !t.id.IsZero() && n.askIntroduction(t.id) {
		err = fmt.Errorf("%w (asked a member that reaches it to introduce us through NAT)", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ds := t.status
	ds.busy = false
	if err == nil || errors.Is(err, errSelf) {
		ds.done = t.id.IsZero() // a hint is done; a member is redialed if it drops
		ds.backoff, ds.next = 0, time.Time{}
		return
	}
	if ctx.Err() != nil && n.ctx.Err() == nil {
		ds.backoff, ds.next = 0, time.Time{} // cancelled by an address change: dial the new network now
		return
	}
	ds.backoff = min(max(2*ds.backoff, n.cfg.RedialMin), n.cfg.RedialMax)
	// Jitter in [backoff/2, backoff) spreads redials of many nodes.
	ds.next = time.Now().Add(ds.backoff/2 + rand.N(ds.backoff/2+1))
	if n.ctx.Err() == nil {
		who := "the member at " + t.key
		if m := n.roster[t.id]; m != nil && !t.id.IsZero() {
			who = m.Name
		}
		n.log.Log(n.ctx, logLevelFor(err), "could not connect", "target", t.key, "member", who, "err", err,
			"retry", ds.backoff, "fix", fixFor(err, who))
	}
}
