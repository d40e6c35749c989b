package sync

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshfs/meshfs/internal/safetext"
	"github.com/meshfs/meshfs/mesh"
)

// Status is a snapshot of the engine for `meshfs status`.
type Status struct {
	Self           SelfStatus       `json:"self"`
	Peers          []PeerStatus     `json:"peers"`
	Transfers      []TransferStatus `json:"transfers"`
	ChecksumErrors uint64           `json:"checksum_errors"` // blocks dropped for a bad hash
}

// SelfStatus identifies this node.
type SelfStatus struct {
	ID   string `json:"id"`
	Name string `json:"name"`
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
	Sent     uint64        `json:"sent_bytes"`
	Received uint64        `json:"received_bytes"`
	Folder   string        `json:"folder"`   // inbox folder name, if any file came
	Queued   int           `json:"queued"`   // deliveries waiting for this peer
	InFlight int           `json:"inflight"` // deliveries being offered or sent
	Problem  string        `json:"problem"`  // last refusal, if any
}

// TransferStatus is one delivery (send) or one partial file (receive).
type TransferStatus struct {
	Path      string    `json:"path"`
	Peer      string    `json:"peer"`      // display name
	Direction string    `json:"direction"` // "send" or "receive"
	Size      int64     `json:"size"`
	Done      int64     `json:"done"` // bytes sent or held
	State     string    `json:"state"`
	StartedAt time.Time `json:"started_at"`
}

// Status returns a snapshot of peers and transfers.
func (e *Engine) Status() Status {
	t := e.transport()
	var st Status
	var infos []mesh.PeerInfo
	if t != nil {
		st.Self = SelfStatus{ID: t.ID().String(), Name: safeName(t.Name())}
		infos = t.Peers()
	}
	st.ChecksumErrors = e.checksumErrors.Load()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range infos {
		st.Peers = append(st.Peers, e.peerStatusLocked(p))
	}
	st.Transfers = e.transfersLocked()
	return st
}

// peerStatusLocked fills one PeerStatus.
func (e *Engine) peerStatusLocked(p mesh.PeerInfo) PeerStatus {
	ps := PeerStatus{
		ID: p.ID.String(), Name: safeName(p.Name), State: p.State.String(), Addr: p.Addr,
		RTT: p.RTT, LastSeen: p.LastSeen, Since: p.Since, Sent: p.Sent, Received: p.Received,
		Folder: e.folders[p.ID],
	}
	key := p.ID.String()
	for _, r := range e.outOrder {
		d := r.Peers[key]
		if d == nil || d.State == stateVerified {
			continue
		}
		switch {
		case d.owner != nil:
			ps.InFlight++
		case d.State == stateQueued:
			ps.Queued++
		}
		if d.Reason != "" {
			ps.Problem = "refused: " + d.Reason // kept while retried
		}
	}
	return ps
}

// transfersLocked lists unfinished deliveries and partials, oldest first.
func (e *Engine) transfersLocked() []TransferStatus {
	var out []TransferStatus
	for _, r := range e.outOrder {
		for key, d := range r.Peers {
			if d.State == stateVerified {
				continue
			}
			state := d.State
			if d.owner != nil {
				state = d.phase
			}
			if d.Reason != "" && (d.State == stateRefused || d.State == stateRejected) {
				state += ": " + d.Reason
			}
			out = append(out, TransferStatus{Path: r.Rel, Peer: e.nameForKeyLocked(key, d.Name), Direction: "send",
				Size: r.Manifest.Size, Done: d.sent, State: state, StartedAt: d.started})
		}
	}
	for _, t := range e.in {
		state := "paused"
		if t.owner != nil {
			state = "receiving"
		}
		out = append(out, TransferStatus{Path: t.meta.Path, Peer: e.displayNameLocked(t.key.peer), Direction: "receive",
			Size: int64(t.meta.Size), Done: int64(t.have.count()) * int64(t.meta.BlockSize), State: state, StartedAt: t.meta.Started})
	}
	for i := range out {
		out[i].Done = min(out[i].Done, out[i].Size)
	}
	slices.SortStableFunc(out, func(a, b TransferStatus) int { return a.StartedAt.Compare(b.StartedAt) })
	return out
}

// nameForKeyLocked is the display name of a peer given as a full ID string.
func (e *Engine) nameForKeyLocked(key, fallback string) string {
	if id, err := mesh.ParsePeerID(key); err == nil {
		if n, ok := e.names[id]; ok {
			return n
		}
	}
	return fallback
}

// PeersTable renders the `peers` file: a header and one aligned line per
// member, connected or offline.
func (e *Engine) PeersTable() []byte {
	st := e.Status()
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tID\tSTATE\tADDRESS\tRTT\tLAST SEEN\tTRANSFERS")
	now := time.Now()
	for _, p := range st.Peers {
		addr := p.Addr
		if addr == "" {
			addr = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, shortID(p.ID), p.State, safetext.Text(addr),
			formatRTT(p.RTT), formatSeen(p.LastSeen, now), formatTransfers(p))
	}
	w.Flush()
	return b.Bytes()
}

func shortID(full string) string {
	if len(full) > 8 {
		return full[:8]
	}
	return full
}

// formatRTT gives "0.3ms", "12ms", "1.2s" or "-".
func formatRTT(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// formatSeen gives "now", "5s ago", "3m ago", "2h ago", "4d ago" or "-".
func formatSeen(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// formatTransfers gives "2 queued, 1 sending", a refusal, or "-".
func formatTransfers(p PeerStatus) string {
	var parts []string
	if p.Queued > 0 {
		parts = append(parts, fmt.Sprintf("%d queued", p.Queued))
	}
	if p.InFlight > 0 {
		parts = append(parts, fmt.Sprintf("%d sending", p.InFlight))
	}
	if p.Problem != "" {
		parts = append(parts, safetext.Text(p.Problem))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// humanSI formats bytes in decimal units, as in "2.1 MB".
func humanSI(n uint64) string { return human(n, 1000, []string{"B", "kB", "MB", "GB", "TB", "PB"}) }

// humanIEC formats bytes in binary units, as in "64.0 MiB".
func humanIEC(n uint64) string {
	return human(n, 1024, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"})
}

func human(n uint64, unit float64, names []string) string {
	if float64(n) < unit {
		return fmt.Sprintf("%d %s", n, names[0])
	}
	v, i := float64(n), 0
	for v >= unit && i < len(names)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, names[i])
}

// Delivery returns the delivery state of outbox file rel for each member,
// keyed by display name, and whether rel has a transfer at all. A state is
// "queued", "offered", "sending 43%", "verifying", "verified" or
// "refused: <reason>". Names are made distinct (and never "state" or
// "incomplete", the fs package's own attributes) with a short ID suffix.
// It reads memory only, so FUSE can call it.
func (e *Engine) Delivery(rel string) (map[string]string, bool) {
	rel, ok := cleanRel(rel)
	if !ok {
		return nil, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	rec := e.recordForLocked(rel)
	if rec == nil {
		return nil, false
	}
	keys := slices.Sorted(maps.Keys(rec.Peers))
	out := make(map[string]string, len(keys))
	for _, key := range keys {
		d := rec.Peers[key]
		name := e.nameForKeyLocked(key, d.Name)
		if _, taken := out[name]; taken || name == "state" || name == "incomplete" {
			name += "-" + shortID(key)
		}
		out[name] = deliveryText(d, rec.Manifest.Size)
	}
	return out, true
}

// deliveryText renders one member's delivery state for users.
func deliveryText(d *delivery, size int64) string {
	switch {
	case d.State == stateVerified:
		return stateVerified
	case d.owner != nil && d.phase == "sending":
		pct := int64(100)
		if size > 0 {
			pct = min(d.sent*100/size, 99) // 100% only once verified
		}
		return fmt.Sprintf("sending %d%%", pct)
	case d.owner != nil && d.phase != "":
		return d.phase
	case d.State == stateRefused || d.State == stateRejected:
		if d.Reason == "" {
			return "refused"
		}
		return "refused: " + safetext.Text(d.Reason)
	}
	return stateQueued
}
