package mesh

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/meshfs/meshfs/internal/wire"
)

// Signed address records. A member signs the addresses it can be dialed at
// with its member key, so that any member can pass them on and a receiver
// can tell them from the unsigned hints a PEERS entry also carries: a
// forged hint costs a failed dial at most, but it could push a member's
// real addresses out of a roster; a record cannot be forged, and an older
// record never replaces a newer one.

// recordDomain starts the signed bytes, so that a signature made for an
// address record is never valid for anything else the member key signs.
const recordDomain = "meshfs address record v1"

// Record limits.
const (
	// maxRecordLen bounds an encoded record: ID, time, flags, 8 addresses
	// of 300 bytes and the signature fit in 2.6 KiB.
	maxRecordLen = 4 << 10
	recordSigLen = ed25519.SignatureSize
	// recordHeadLen is the ID and issued-at that start every record: a
	// receiver reads them to skip a record it holds already.
	recordHeadLen = 32 + 8
)

// Record flag bits.
const (
	recordAnchor = 1 << 0 // the member runs with Config.Anchor
	recordAdmin  = 1 << 1 // the member holds the mesh CA key: anchors relay joins to it
	recordFlags  = recordAnchor | recordAdmin
)

// addrRecord is one member's signed statement of its dialable addresses.
// Records are never changed once made: a newer one replaces the pointer.
type addrRecord struct {
	ID       PeerID   `json:"-"`
	IssuedAt int64    `json:"issued_at"` // unix nanoseconds; the newer record wins
	Flags    uint8    `json:"flags,omitempty"`
	Addrs    []string `json:"addrs"`
	Sig      []byte   `json:"sig"`
	// raw is the wire form, set when the record is made (signed, decoded
	// or loaded), so that passing it on costs no encoding.
	raw []byte
}

// wire returns the record's wire form, nil for no record.
func (r *addrRecord) wire() []byte {
	if r == nil {
		return nil
	}
	return r.raw
}

// recordTime is the issued-at of a record in wire form of at least
// recordHeadLen bytes (decodePeers checks).
func recordTime(raw []byte) int64 {
	return int64(binary.BigEndian.Uint64(raw[32:recordHeadLen]))
}

func (r *addrRecord) anchor() bool { return r != nil && r.Flags&recordAnchor != 0 }
func (r *addrRecord) admin() bool  { return r != nil && r.Flags&recordAdmin != 0 }

// newer reports whether r should replace old.
func (r *addrRecord) newer(old *addrRecord) bool {
	return r != nil && (old == nil || r.IssuedAt > old.IssuedAt)
}

// body is everything the signature covers but the domain string.
func (r *addrRecord) body() []byte {
	var e wire.Encoder
	e.Raw(r.ID[:])
	e.U64(uint64(r.IssuedAt))
	e.U8(r.Flags)
	e.U8(uint8(len(r.Addrs)))
	for _, a := range r.Addrs {
		e.Str(a)
	}
	return e.B
}

func (r *addrRecord) signed() []byte { return append([]byte(recordDomain), r.body()...) }

// verify checks the signature with the member's certified key.
func (r *addrRecord) verify(key ed25519.PublicKey) error {
	if !ed25519.Verify(key, r.signed(), r.Sig) {
		return fmt.Errorf("address record of %s: signature does not verify", r.ID.Short())
	}
	return nil
}

// encodeRecord is the wire form of r's fields: body, then the signature.
func encodeRecord(r *addrRecord) []byte {
	return append(r.body(), r.Sig...)
}

// decodeRecord parses a record, checking every size before it reads.
func decodeRecord(b []byte) (*addrRecord, error) {
	if len(b) > maxRecordLen {
		return nil, protocolError("address record of %d bytes", len(b))
	}
	d := wire.Decoder{B: b}
	r := &addrRecord{ID: readPeerID(&d), IssuedAt: int64(d.U64()), Flags: d.U8()}
	if d.Err() == nil && r.Flags&^recordFlags != 0 {
		d.Fail(protocolError("address record flags %#x", r.Flags))
	}
	r.Addrs = decodeAddrs(&d)
	r.Sig = d.Fixed(recordSigLen)
	if err := finish(&d); err != nil {
		return nil, fmt.Errorf("decode address record: %w", err)
	}
	r.raw = b
	return r, nil
}

// signRecord makes this node's record of addrs.
func signRecord(key ed25519.PrivateKey, id PeerID, at int64, flags uint8, addrs []string) *addrRecord {
	r := &addrRecord{ID: id, IssuedAt: at, Flags: flags, Addrs: addrs}
	r.Sig = ed25519.Sign(key, r.signed())
	r.raw = encodeRecord(r)
	return r
}

// refreshRecord signs a new record of this node's dialable addresses when
// they (or its flags) differ from the last one, and reports whether it
// did. It is called where addresses change (start, SetMapped, a
// connection coming or going, the discovery tick that notices a changed
// interface) and never re-signs what did not change.
func (n *Node) refreshRecord() bool {
	addrs := n.Addresses().Dialable()
	if len(addrs) == 0 {
		return false // nothing to vouch for; hints stay what members use
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ident.member() || n.noRecord {
		return false
	}
	var flags uint8
	if n.cfg.Anchor {
		flags |= recordAnchor
	}
	if n.ident.admin() {
		flags |= recordAdmin
	}
	old := n.ownRec
	if old != nil && old.Flags == flags && slices.Equal(old.Addrs, addrs) {
		return false
	}
	at := time.Now().UnixNano()
	if old != nil && at <= old.IssuedAt {
		at = old.IssuedAt + 1 // newer wins: never sign an older time than the last
	}
	n.ownRec = signRecord(n.ident.key, n.self, at, flags, addrs)
	n.log.Debug("address record signed", "addrs", addrs, "anchor", n.cfg.Anchor)
	return true
}

// refreshAndPush re-signs this node's record if its addresses changed and
// then tells every connected member at once.
func (n *Node) refreshAndPush() {
	if n.refreshRecord() {
		n.pushPeers(nil)
	}
}

// acceptRecord takes an entry's record when it is newer than the one the
// roster holds, once it decoded and verified with the key key finds (the
// member's certified key); a record that does not is a protocol error.
// An older or equal record is skipped unread, so passing on records
// costs a receiver nothing once it holds them. recMu makes the many
// connections that bring the same new record at once check it once.
// It reports a change.
func (n *Node) acceptRecord(pe peerEntry, key func() (ed25519.PublicKey, error)) (bool, error) {
	if len(pe.Record) == 0 || pe.ID == n.self {
		return false, nil
	}
	n.recMu.Lock()
	defer n.recMu.Unlock()
	if !n.wantsRecord(pe.ID, recordTime(pe.Record)) {
		return false, nil
	}
	r, err := verifiedRecord(pe.Record, key)
	if err != nil {
		return false, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.takeRecord(r), nil
}

// wantsRecord reports whether a record of id issued at at would replace
// the one the roster holds.
func (n *Node) wantsRecord(id PeerID, at int64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.roster[id]
	return m != nil && (m.Record == nil || at > m.Record.IssuedAt)
}

// verifiedRecord decodes a record and checks its signature.
func verifiedRecord(raw []byte, key func() (ed25519.PublicKey, error)) (*addrRecord, error) {
	r, err := decodeRecord(raw)
	if err != nil {
		return nil, err
	}
	k, err := key()
	if err == nil {
		err = r.verify(k)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return r, nil
}

// takeRecord keeps a verified record if it is still the newest (mu held),
// and reports a change. New addresses are dialed at once.
func (n *Node) takeRecord(r *addrRecord) bool {
	m := n.roster[r.ID]
	if m == nil || n.revs.has(r.ID) || !r.newer(m.Record) {
		return false
	}
	addrsChanged := m.Record == nil || !slices.Equal(m.Record.Addrs, r.Addrs)
	m.Record = r
	// Saved with the next lazy save (the caller's rosterChanged), not at
	// once: the hints saved with the member already find it after a
	// restart, and a crowd joining brings a record per member.
	if addrsChanged {
		if ds := n.dials[idKey(r.ID)]; ds != nil && !ds.busy {
			ds.next = time.Time{}
		}
	}
	return true
}

// dialable reports whether dialAddrs lists any address.
func (m *member) dialable() bool {
	return len(m.Addrs) > 0 || m.Record != nil && len(m.Record.Addrs) > 0
}

// dialAddrs is what the dial loop tries for m: its record's addresses
// (signed by the member) first, then the hints not among them.
func (m *member) dialAddrs() []string {
	if m.Record == nil {
		return m.Addrs
	}
	out := slices.Clone(m.Record.Addrs)
	for _, a := range m.Addrs {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// loadRecord keeps a roster record from peers.json only if it still
// verifies against the member's certificate: the file is ours, but a
// record taken from it is passed on to every member.
func loadRecord(m *member) {
	if m.Record == nil {
		return
	}
	m.Record.ID = m.ID
	r := m.Record
	ok := m.Cert != nil && len(r.Addrs) <= maxAddrs && r.Flags&^recordFlags == 0 &&
		!slices.ContainsFunc(r.Addrs, func(a string) bool { return validateAddr(a) != nil })
	if ok {
		key, err := keyOf(m.ID, m.Cert)
		ok = err == nil && r.verify(key) == nil
	}
	if !ok {
		m.Record = nil
		return
	}
	r.raw = encodeRecord(r)
}

// maxJoinAddrs bounds the --join list of an invite.
const maxJoinAddrs = 8

// JoinAddrs lists addresses a new member may join through, for an invite:
// this node's dialable addresses, then those of the anchors it knows from
// their newest verified records (connected ones first), taken in turns so
// that each source's best address comes early, without repeats, at most 8.
// An anchor relays a join to the admin, so a joiner that cannot reach the
// admin still gets in through any anchor.
func (n *Node) JoinAddrs() []string {
	lists := [][]string{n.Addresses().Dialable()}
	lists = append(lists, n.anchorAddrs()...)
	var out []string
	for i := 0; len(out) < maxJoinAddrs; i++ {
		more := false
		for _, l := range lists {
			if i < len(l) {
				more = true
				if !slices.Contains(out, l[i]) && len(out) < maxJoinAddrs {
					out = append(out, l[i])
				}
			}
		}
		if !more {
			break
		}
	}
	return out
}

// anchorAddrs lists the record addresses of each known anchor: connected
// ones first, then by last seen.
func (n *Node) anchorAddrs() [][]string {
	type anchor struct {
		live  bool
		seen  time.Time
		addrs []string
	}
	var as []anchor
	n.mu.Lock()
	for id, m := range n.roster {
		if m.Record.anchor() && id != n.self && !n.revs.has(id) && m.Cert != nil {
			as = append(as, anchor{n.peers[id] != nil, m.LastSeen, m.Record.Addrs})
		}
	}
	n.mu.Unlock()
	slices.SortStableFunc(as, func(a, b anchor) int {
		if a.live != b.live {
			if a.live {
				return -1
			}
			return 1
		}
		return b.seen.Compare(a.seen)
	})
	out := make([][]string, len(as))
	for i, a := range as {
		out[i] = a.addrs
	}
	return out
}

// entryRecord decodes an entry's record and checks it against the entry's
// own certificate, which the caller verified.
func entryRecord(pe peerEntry) (*addrRecord, error) {
	return verifiedRecord(pe.Record, func() (ed25519.PublicKey, error) { return keyOf(pe.ID, pe.Cert) })
}
