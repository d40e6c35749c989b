// Package present formats what meshfs shows people: byte counts, round-trip
// times, "5s ago", short IDs. The peers file, the chat log's delivery lines,
// refusal reasons and `meshfs status` all use it, so a figure reads the
// same wherever it appears.
package present

import (
	"fmt"
	"time"
)

// SI formats a byte count in decimal units, as in "2.1 MB".
func SI(n uint64) string { return units(n, 1000, []string{"B", "kB", "MB", "GB", "TB", "PB"}) }

// IEC formats a byte count in binary units, as in "64.0 MiB" (ls -lh).
func IEC(n uint64) string {
	return units(n, 1024, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"})
}

func units(n uint64, unit float64, names []string) string {
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

// RTT gives "0.3ms", "12ms", "1.2s", or "-" when unknown.
func RTT(d time.Duration) string {
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

// Seen gives "now", "5s ago", "3m ago", "2h ago", "4d ago", or "-" for never.
func Seen(t, now time.Time) string {
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

// Since is when a member was last seen, as a clock time: "-" for never,
// "now" within a second, "14:03:27" on now's day, "2026-12-06 14:03"
// before. Unlike Seen it does not change while time passes, so a file
// that shows it (peers, for the members a partial mesh is not connected
// to) is rewritten only when something happens. Both times are shown in
// now's location.
func Since(t, now time.Time) string {
	switch {
	case t.IsZero():
		return "-"
	case now.Sub(t) < time.Second:
		return "now"
	}
	t = t.In(now.Location())
	if y, m, d := t.Date(); now.Year() == y && now.Month() == m && now.Day() == d {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}

// ShortID is the first eight characters of a peer ID's text form: enough
// to tell members apart on screen, as Syncthing's short device IDs are.
func ShortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
