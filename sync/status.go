package sync

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/meshfs/meshfs/internal/present"
	"github.com/meshfs/meshfs/internal/safetext"
	"github.com/meshfs/meshfs/mesh"
)

// Status is a snapshot of the engine for `meshfs status`.
type Status struct {
	Self      SelfStatus       `json:"self"`
	Peers     []PeerStatus     `json:"peers"`
	Transfers []TransferStatus `json:"transfers"`
	Unsent    []UnsentFile     `json:"unsent,omitempty"` // outbox files not sent, and why
	// Delivered lists the latest deliveries verified since this node
	// started, newest first; Transfers leaves them out.
	Delivered []TransferStatus `json:"delivered,omitempty"`
	// Arrivals lists the latest files placed in inbox/, newest first.
	Arrivals       []ArrivalStatus `json:"arrivals,omitempty"`
	ChecksumErrors uint64          `json:"checksum_errors"` // blocks dropped for a bad hash
}

// UnsentFile is an outbox file that is not sent, and why.
type UnsentFile struct {
	Path string `json:"path"`
	Why  string `json:"why"`
}

// SelfStatus identifies this node.
type SelfStatus struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// MaxFileSize is the largest file this node sends or accepts: 'meshfs
	// doctor' compares it with the free space under the tree.
	MaxFileSize int64 `json:"max_file_size"`
	// Addresses are where this node listens and is reached (Config.Addresses).
	Addresses *AddressStatus `json:"addresses,omitempty"`
}

// AddressStatus is this node's own addresses.
type AddressStatus struct {
	Listen   string   `json:"listen"`             // the listen address
	Local    []string `json:"local,omitempty"`    // interface addresses with the listen port
	Observed []string `json:"observed,omitempty"` // as connected members see this node
	Mapped   string   `json:"mapped,omitempty"`   // the router's forwarded address, if any
	// MappingProblem says why there is no port mapping, when there is none.
	MappingProblem string `json:"mapping_problem,omitempty"`
}

// Lines renders the addresses for the peers file and 'meshfs status'.
func (a AddressStatus) Lines() []string {
	lines := []string{"listen    " + a.Listen}
	for _, f := range []struct {
		label string
		addrs []string
	}{{"local     ", a.Local}, {"observed  ", a.Observed}} {
		if len(f.addrs) > 0 {
			lines = append(lines, f.label+strings.Join(f.addrs, ", "))
		}
	}
	switch {
	case a.Mapped != "":
		lines = append(lines, "mapped    "+a.Mapped)
	case a.MappingProblem != "":
		lines = append(lines, "no port mapping: "+a.MappingProblem)
	}
	for i, l := range lines {
		lines[i] = safetext.Text(l)
	}
	return lines
}

// PeerStatus is one member, with its transfer counts.
type PeerStatus struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	State    string        `json:"state"` // "connected" or "offline"
	Addr     string        `json:"addr"`
	RTT      time.Duration `json:"rtt_ns"`
	LastSeen time.Time     `json:"last_seen"`
	Since    time.Time     `json:"since"`
	Outbound bool          `json:"outbound"` // this node dialed the live connection
	// Path is how the member is reached: "direct" (a connection one side
	// dialed), "punched" (a connection opened through both sides' NATs,
	// over Transport),
	// "relayed" (no connection; the members in Through reach it and pass
	// on what it sends and gets) or "" (no known way now).
	Path      string   `json:"path"`
	Transport string   `json:"transport,omitempty"` // of the live connection: "tcp", or "quic" (punched over UDP)
	Through   []string `json:"through,omitempty"`   // names of the members it is reached through
	Sent      uint64   `json:"sent_bytes"`
	Received  uint64   `json:"received_bytes"`
	Folder    string   `json:"folder"`             // inbox folder name, if any file came
	Queued    int      `json:"queued"`             // deliveries waiting for this peer
	InFlight  int      `json:"inflight"`           // deliveries being offered or sent
	Fetching  int      `json:"fetching,omitempty"` // deliveries it takes from other members now
	Problem   string   `json:"problem"`            // last refusal, if any
	// BadData counts what this member sent that did not verify: chat
	// records and file manifests against their author's key, blocks
	// against their hash. An honest member passes things on unchanged.
	BadData uint64 `json:"bad_data,omitempty"`
	Version string `json:"version,omitempty"` // the member's meshfs release, when connected
	// ClockSkew is how far the member's clock is ahead of ours (negative:
	// behind), once measured on a live connection; nil before.
	ClockSkew *time.Duration `json:"clock_skew_ns,omitempty"`
}

// TransferStatus is one delivery (send) or one partial file (receive).
type TransferStatus struct {
	Path      string    `json:"path"`
	Peer      string    `json:"peer"`      // display name
	Direction string    `json:"direction"` // "send", "receive", or "relay": a file of another member passed on
	Size      int64     `json:"size"`
	Done      int64     `json:"done"`  // bytes sent or held
	State     string    `json:"state"` // a DeliveryState, "receiving" (from members other than its author: "receiving from bob, carol") or "paused", maybe with ": reason"
	StartedAt time.Time `json:"started_at"`
	// FinishedAt is when a delivery in Status.Delivered was verified.
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Status returns a snapshot of peers and transfers. It takes each owner's
// lock in turn, never two at once.
func (e *Engine) Status() Status {
	t := e.transport()
	var st Status
	var infos []mesh.PeerInfo
	if t != nil {
		st.Self = SelfStatus{ID: t.ID().String(), Name: safeName(t.Name())}
		infos = t.Peers()
	}
	st.Self.MaxFileSize = e.cfg.MaxFileSize
	if e.cfg.Addresses != nil {
		a := e.cfg.Addresses()
		st.Self.Addresses = &a
	}
	st.ChecksumErrors = e.checksumErrors.Load()
	for _, p := range infos {
		ps := PeerStatus{
			ID: p.ID.String(), Name: safeName(p.Name), State: p.State.String(), Addr: p.Addr,
			RTT: p.RTT, LastSeen: p.LastSeen, Since: p.Since, Outbound: p.Outbound, Sent: p.Sent, Received: p.Received,
			Folder: e.in.folderOf(p.ID), Version: p.Release, Path: p.Link.String(), Transport: p.Transport, Through: namesOf(p.Through, infos),
		}
		if p.SkewKnown {
			ps.ClockSkew = &p.Skew
		}
		e.out.countFor(&ps)
		if c := e.peers.get(p.ID); c != nil && c.problem() != "" {
			ps.Problem = c.problem()
		}
		ps.BadData = e.bad.of(p.ID)
		st.Peers = append(st.Peers, ps)
	}
	st.Transfers = append(e.out.transfers(), e.in.transfersStatus()...)
	for i := range st.Transfers {
		st.Transfers[i].Done = min(st.Transfers[i].Done, st.Transfers[i].Size)
	}
	slices.SortStableFunc(st.Transfers, func(a, b TransferStatus) int { return a.StartedAt.Compare(b.StartedAt) })
	st.Delivered = e.out.delivered()
	st.Arrivals = e.in.arrivals()
	unsent := e.Unsent()
	for _, rel := range slices.Sorted(maps.Keys(unsent)) {
		st.Unsent = append(st.Unsent, UnsentFile{Path: rel, Why: unsent[rel]})
	}
	return st
}

// countFor fills a member's queued, in-flight and fetching counts and its
// last refusal.
func (o *outbound) countFor(ps *PeerStatus) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.order {
		d := r.Peers[ps.ID]
		if d == nil || d.State == StateVerified {
			continue
		}
		switch {
		case d.owner != nil:
			ps.InFlight++
		case d.fetch.shown(now):
			ps.Fetching++
			continue // refused as busy here because it takes it from others: no problem
		case d.State == StateQueued:
			ps.Queued++
		}
		// A relay's wait is its own business, and so is a private file's
		// carrier's: the file is its member's.
		if d.State == StateRefused && !r.relay() && (r.To == "" || r.To == ps.ID) {
			ps.Problem = deliveryText(d, r.Manifest.Size)
		}
	}
}

// transfers lists the unfinished deliveries, those the member takes from
// other members included.
func (o *outbound) transfers() []TransferStatus {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []TransferStatus
	for _, r := range o.order {
		for key, d := range r.Peers {
			if d.State == StateVerified {
				continue
			}
			state, done := deliveryText(d, r.Manifest.Size), d.sent
			switch {
			case d.owner != nil:
				state = string(d.phase)
			case d.fetch.shown(now): // deliveryText's words, and the member's own progress
				done = d.fetch.done(r.Manifest.Size)
			}
			dir, p := "send", shownRel(r.Rel)
			if r.relay() {
				dir, p = "relay", r.Src
			}
			out = append(out, TransferStatus{Path: p, Peer: o.peers.nameOf(key, d.Name), Direction: dir,
				Size: r.Manifest.Size, Done: done, State: state, StartedAt: d.started})
		}
	}
	return out
}

// transfersStatus lists the partial files being received or paused.
func (ib *inbound) transfersStatus() []TransferStatus {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	var out []TransferStatus
	for _, t := range ib.transfers {
		state := "paused"
		if ids := t.sourceIDsLocked(); len(ids) > 0 {
			state = "receiving"
			if len(ids) > 1 || ids[0] != t.key.peer {
				state += " from " + ib.peers.namesOf(ids)
			}
		}
		path := t.meta.Path
		if t.meta.To != "" { // a box: the name is inside it
			path = "private file (sealed)"
			if !ib.mine(&t.meta) {
				path = "private file carried for " + ib.peers.displayName(t.meta.to())
			}
		}
		out = append(out, TransferStatus{Path: path, Peer: ib.peers.displayName(t.key.peer), Direction: "receive",
			Size: int64(t.meta.Size), Done: int64(t.have.count()) * int64(t.meta.BlockSize), State: state, StartedAt: t.meta.Started})
	}
	return out
}

// folderOf is the inbox folder of a peer, or "" before its first file.
func (ib *inbound) folderOf(id mesh.PeerID) string {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	return ib.folders[id]
}

// namesOf gives the display names of ids, as infos list them.
func namesOf(ids []mesh.PeerID, infos []mesh.PeerInfo) []string {
	var out []string
	for _, id := range ids {
		if i := slices.IndexFunc(infos, func(p mesh.PeerInfo) bool { return p.ID == id }); i >= 0 {
			out = append(out, safeName(infos[i].Name))
		}
	}
	return out
}

// PathText is how the peers file and meshfs status show a member's path:
// "direct", "punched (quic)", "punched (tcp)", "through alice, bob", or "-".
func (p PeerStatus) PathText() string {
	switch {
	case p.Path == "punched" && p.Transport != "":
		return "punched (" + p.Transport + ")"

	case p.Path == "relayed" && len(p.Through) > 0:
		return "through " + strings.Join(p.Through, ", ")
	case p.Path == "":
		return "-"
	}
	return p.Path
}

// MembersChanged has a value after a member connected, left or was
// removed; one pending value stands for any number of changes. What else
// the peers table shows (paths, round trips, transfers) changes without
// one.
func (e *Engine) MembersChanged() <-chan struct{} { return e.members }

// PeersTable renders the `peers` file: a header and one aligned line per
// member, connected or offline.
func (e *Engine) PeersTable() []byte {
	st := e.Status()
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tID\tSTATE\tPATH\tADDRESS\tRTT\tSEEN\tTRANSFERS")
	now := time.Now()
	for _, p := range st.Peers {
		addr := p.Addr
		if addr == "" {
			addr = "-"
		}
		seen := p.LastSeen
		if p.State == "connected" {
			seen = now // seen over a live connection: "now", not a count of seconds since the last frame
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, present.ShortID(p.ID), p.State, p.PathText(), safetext.Text(addr),
			present.RTT(roughRTT(e.rtts.show(p.ID, p.RTT, now))), present.Since(seen, now), formatTransfers(p))
	}
	w.Flush()
	writeUnsent(&b, st.Unsent)
	if a := st.Self.Addresses; a != nil {
		fmt.Fprintf(&b, "\nthis node:\n")
		for _, l := range a.Lines() {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.Bytes()
}

// roughRTT keeps one significant digit of d (2.6ms shows as 3ms, 0.34ms
// as 0.3ms): the peers file is rewritten only when its text changes, and
// the jitter of every PONG must not change it.
func roughRTT(d time.Duration) time.Duration {
	step := time.Duration(1)
	for d/step >= 10 {
		step *= 10
	}
	return (d + step/2) / step * step
}

// shownRTTs is the RTT the peers table shows for each member. It follows
// the measured one only when that is more than twice or less than half
// of it, and then at most once every rttShowEvery for all members
// together: on a busy machine loopback round trips swing between 0.1 and
// 50 ms, and in a plain folder each swing would rewrite the peers file
// (and wake everything that watches the folder). A member's first RTT,
// and a change to or from none (it connected or left), show at once.
type shownRTTs struct {
	mu    sync.Mutex
	m     map[string]time.Duration // guarded by mu: member ID to shown RTT
	moved time.Time                // guarded by mu: the render that last moved one
}

// rttShowEvery is the least time between two renders of the peers table
// that show a changed RTT.
const rttShowEvery = 30 * time.Second

// show returns the RTT to show for member id, measured rtt, in the render
// of the table at now (the same now for every member of one render).
func (s *shownRTTs) show(id string, rtt time.Duration, now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[id]
	if ok && (old > 0) == (rtt > 0) {
		if rtt <= 2*old && rtt >= old/2 {
			return old
		}
		if !now.Equal(s.moved) && now.Sub(s.moved) < rttShowEvery {
			return old
		}
		s.moved = now
	}
	if s.m == nil {
		s.m = make(map[string]time.Duration)
	}
	s.m[id] = rtt
	return rtt
}

// maxUnsentShown bounds the outbox files the peers file lists as not sent;
// meshfs status lists them all.
const maxUnsentShown = 10

// writeUnsent appends the outbox files that are not sent, and why, below
// the members: someone watching peers for a file that never leaves learns
// why there.
func writeUnsent(b *bytes.Buffer, unsent []UnsentFile) {
	if len(unsent) == 0 {
		return
	}
	fmt.Fprintf(b, "\nnot sent from outbox/:\n")
	for i, u := range unsent {
		if i == maxUnsentShown {
			fmt.Fprintf(b, "  and %d more (meshfs status lists them all)\n", len(unsent)-i)
			break
		}
		fmt.Fprintf(b, "  %s: %s\n", safetext.Text(u.Path), u.Why)
	}
}

// formatTransfers gives "2 queued, 1 sending, 1 fetching from others", a
// refusal, or "-".
func formatTransfers(p PeerStatus) string {
	var parts []string
	if p.Queued > 0 {
		parts = append(parts, fmt.Sprintf("%d queued", p.Queued))
	}
	if p.InFlight > 0 {
		parts = append(parts, fmt.Sprintf("%d sending", p.InFlight))
	}
	if p.Fetching > 0 {
		parts = append(parts, fmt.Sprintf("%d fetching from others", p.Fetching))
	}
	if p.Problem != "" {
		parts = append(parts, safetext.Text(p.Problem))
	}
	if p.BadData > 0 {
		parts = append(parts, fmt.Sprintf("bad data from it: %d", p.BadData))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// Delivery returns the delivery state of outbox file rel for each member,
// keyed by display name, and whether rel has a transfer at all. A state is
// "queued", "offered", "sending 43%", "verifying", "verified",
// "refused: <reason>", or "fetching from bob, carol 45%" while the member
// takes the file from other members and this one is not sending it (its
// FETCHING of the last 30 s says so; one naming no member leaves the state
// as it was: the member waits). Names are made distinct (and never "state" or
// "incomplete", the fs package's own attributes) with a short ID suffix.
// It reads memory only, so FUSE can call it.
func (e *Engine) Delivery(rel string) (map[string]string, bool) {
	rel, ok := cleanRel(rel)
	if !ok {
		return nil, false
	}
	return e.out.delivery(rel)
}

func (o *outbound) delivery(rel string) (map[string]string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	rec := o.recordForLocked(rel)
	if rec == nil {
		return nil, false
	}
	keys := slices.Sorted(maps.Keys(rec.Peers))
	if rec.To != "" && rec.Peers[rec.To] != nil {
		keys = []string{rec.To} // the others only carry it: its member's state is the file's
	}
	out := make(map[string]string, len(keys))
	for _, key := range keys {
		d := rec.Peers[key]
		name := o.peers.nameOf(key, d.Name)
		if _, taken := out[name]; taken || name == "state" || name == "incomplete" {
			name += "-" + present.ShortID(key)
		}
		out[name] = deliveryText(d, rec.Manifest.Size)
	}
	return out, true
}

// deliveryText renders one member's delivery state for people: the state,
// the phase with a percentage while sending, the members it takes the
// file from while it says so and this member is not sending it, or the
// refusal and its reason ("for good" when it is not retried until the file
// changes).
func deliveryText(d *delivery, size int64) string {
	switch {
	case d.State == StateVerified:
		return string(StateVerified)
	case d.owner != nil && d.phase == PhaseSending:
		pct := int64(100)
		if size > 0 {
			pct = min(d.sent*100/size, 99) // 100% only once verified
		}
		return fmt.Sprintf("%s %d%%", PhaseSending, pct)
	case d.owner != nil && d.phase != "":
		return string(d.phase)
	case d.owner == nil && d.fetch.shown(time.Now()):
		return d.fetch.text()
	case d.State == StateRefused:
		text := string(StateRefused)
		if d.Reason != "" {
			text += ": " + safetext.Text(d.Reason)
		}
		if d.Final {
			text += " (until the file changes)"
		}
		return text
	}
	return string(StateQueued)
}
