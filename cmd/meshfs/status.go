package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	meshsync "github.com/meshfs/meshfs/sync"
)

// printStatus renders the node's status for a person: one line per member,
// then one line per transfer in flight with a progress bar.
func printStatus(w io.Writer, raw json.RawMessage) error {
	var st meshsync.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("decode status: %w", err)
	}
	fmt.Fprintf(w, "%s (%s)\n\n", st.Self.Name, shortID(st.Self.ID))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tID\tSTATE\tADDRESS\tRTT\tQUEUED\tSENDING\tPROBLEM")
	for _, p := range st.Peers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", p.Name, shortID(p.ID), p.State,
			orDash(p.Addr), rtt(p.RTT), p.Queued, p.InFlight, orDash(p.Problem))
	}
	if len(st.Peers) == 0 {
		fmt.Fprintln(tw, "(no other members yet)")
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(st.Transfers) == 0 {
		fmt.Fprintln(w, "No transfers in flight.")
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TRANSFER\tPEER\tPROGRESS\t\tSIZE\tSTATE")
	for _, t := range st.Transfers {
		arrow := "->"
		if t.Direction == "receive" {
			arrow = "<-"
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%3.0f%%\t%s\t%s\n", t.Path, arrow, t.Peer, bar(t.Done, t.Size, 20),
			percent(t.Done, t.Size), humanBytes(t.Size), t.State)
	}
	return tw.Flush()
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func rtt(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(10 * time.Microsecond).String()
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

// humanBytes formats n with binary units, as ls -lh does.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
