package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/meshfs/meshfs/internal/present"
	meshsync "github.com/meshfs/meshfs/sync"
)

// printStatus renders a status snapshot for a person: one line per member,
// then one line per transfer in flight with a bar, rate and ETA. It draws
// the bar itself so the output stays plain text in pipes and scripts;
// 'status --watch' uses live bars instead (watch.go).
func printStatus(w io.Writer, st meshsync.Status, now time.Time) error {
	fmt.Fprintf(w, "%s (%s)\n\n", st.Self.Name, present.ShortID(st.Self.ID))
	printMembers(w, st.Peers)
	printUnsent(w, st.Unsent)
	if a := st.Self.Addresses; a != nil {
		fmt.Fprintln(w, "\nThis node:")
		for _, l := range a.Lines() {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	fmt.Fprintln(w)
	if len(st.Transfers) == 0 {
		fmt.Fprintln(w, "No transfers in flight.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRANSFER\tPEER\tPROGRESS\t\tSIZE\tRATE\tETA\tSTATE")
	for _, t := range st.Transfers {
		r := averageRate(t, now)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%3.0f%%\t%s\t%s\t%s\t%s\n", t.Path, transferPeer(t),
			bar(t.Done, t.Size, 20), percent(t.Done, t.Size), present.IEC(uint64(t.Size)), humanRate(r),
			eta(t.Size-t.Done, r), t.State)
	}
	return tw.Flush()
}

// printMembers prints the members table.
func printMembers(w io.Writer, peers []meshsync.PeerStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tID\tSTATE\tPATH\tADDRESS\tRTT\tQUEUED\tSENDING\tPROBLEM")
	for _, p := range peers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", p.Name, present.ShortID(p.ID), p.State, p.PathText(),
			orDash(p.Addr), present.RTT(p.RTT), p.Queued, p.InFlight, orDash(p.Problem))
	}
	if len(peers) == 0 {
		fmt.Fprintln(tw, "(no other members yet)")
	}
	tw.Flush()
}

// printUnsent lists the outbox files that are not sent, and why.
func printUnsent(w io.Writer, unsent []meshsync.UnsentFile) {
	if len(unsent) == 0 {
		return
	}
	fmt.Fprintln(w, "\nNot sent:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, u := range unsent {
		fmt.Fprintf(tw, "  outbox/%s\t%s\n", u.Path, u.Why)
	}
	tw.Flush()
}

// decodeStatus parses the node's status reply.
func decodeStatus(raw json.RawMessage) (meshsync.Status, error) {
	var st meshsync.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("decode status: %w", err)
	}
	return st, nil
}

// transferPeer is "-> bob" for a file being sent, "<- bob" for one received.
func transferPeer(t meshsync.TransferStatus) string {
	if t.Direction == "receive" {
		return "<- " + t.Peer
	}
	return "-> " + t.Peer
}

// averageRate is bytes per second since the transfer started. A resumed
// transfer counts the bytes it already had, so this errs on the high side.
func averageRate(t meshsync.TransferStatus, now time.Time) float64 {
	elapsed := now.Sub(t.StartedAt).Seconds()
	if t.StartedAt.IsZero() || elapsed <= 0 {
		return 0
	}
	return float64(t.Done) / elapsed
}

func eta(left int64, rate float64) string {
	if rate <= 0 {
		return "-"
	}
	return time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second).String()
}

func humanRate(r float64) string {
	if r <= 0 {
		return "-"
	}
	return present.IEC(uint64(r)) + "/s"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func percent(done, size int64) float64 {
	if size <= 0 {
		return 100
	}
	return 100 * float64(done) / float64(size)
}

// bar draws a fixed-width progress bar such as [#######.............].
func bar(done, size int64, width int) string {
	n := int(percent(done, size) / 100 * float64(width))
	n = max(0, min(width, n))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
