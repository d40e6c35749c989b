package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	meshsync "github.com/meshfs/meshfs/sync"
)

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	st := meshsync.Status{
		Self: meshsync.SelfStatus{ID: "abcdefghijkl", Name: "alice", Addresses: &meshsync.AddressStatus{
			Listen: "[::]:8000", Local: []string{"192.168.1.10:8000"}, Observed: []string{"203.0.113.5:41000"},
			MappingProblem: "no router offers port mapping (tried NAT-PMP and UPnP IGD)",
		}},
		Peers: []meshsync.PeerStatus{
			{ID: "bobbobbobbob", Name: "bob", State: "connected", Addr: "127.0.0.1:8001", RTT: 310 * time.Microsecond, InFlight: 1},
			{ID: "carolcarolca", Name: "carol", State: "offline", Queued: 2, Problem: "no space left on carol's disk"},
		},
		Transfers: []meshsync.TransferStatus{{
			Path: "big.bin", Peer: "bob", Direction: "send", Size: 100 << 20, Done: 25 << 20,
			State: "sending", StartedAt: now.Add(-5 * time.Second),
		}},
		Unsent: []meshsync.UnsentFile{{Path: "huge.img", Why: "too big: 5.0 GiB, limit 4.0 GiB (--max-file-size)"}},
	}
	var buf bytes.Buffer
	if err := printStatus(&buf, st, now); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"alice (abcdefgh)", "bob", "connected", "0.3ms", "carol", "offline", "no space left",
		"big.bin", "-> bob", "[#####...............]", "25%", "100.0 MiB", "5.0 MiB/s", "15s", "sending",
		"Not sent:", "outbox/huge.img", "too big: 5.0 GiB, limit 4.0 GiB (--max-file-size)",
		"This node:", "listen    [::]:8000", "local     192.168.1.10:8000", "observed  203.0.113.5:41000",
		"no port mapping: no router offers port mapping",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("printStatus output lacks %q:\n%s", want, out)
		}
	}
}

// TestUpdateBars: a new transfer gets a bar, and a finished one (gone from
// the status) has its bar completed and forgotten.
func TestUpdateBars(t *testing.T) {
	p := mpb.New(mpb.WithOutput(io.Discard))
	bars := make(map[string]*watchedBar)
	now := time.Now()
	tr := meshsync.TransferStatus{Path: "a", Peer: "bob", Direction: "send", Size: 1000, Done: 100}
	updateBars(p, bars, []meshsync.TransferStatus{tr}, now)
	if len(bars) != 1 {
		t.Fatalf("after one transfer: %d bars, want 1", len(bars))
	}
	var b *mpb.Bar
	for _, wb := range bars {
		b = wb.bar
	}
	tr.Done = 600
	updateBars(p, bars, []meshsync.TransferStatus{tr}, now.Add(time.Second))
	if got := b.Current(); got != 600 {
		t.Errorf("bar at %d, want 600", got)
	}
	updateBars(p, bars, nil, now.Add(2*time.Second))
	if len(bars) != 0 || !b.Completed() {
		t.Errorf("after the transfer ended: %d bars, completed=%v; want 0, true", len(bars), b.Completed())
	}
	p.Wait()
}

// TestJoinAddrs: an invite's --join lists what Node.JoinAddrs gives,
// joined by commas (the flag splits them), or the old single hint when it
// gives none.
func TestJoinAddrs(t *testing.T) {
	tests := []struct {
		name   string
		addrs  []string
		listen string
		want   string
	}{
		{"admin then anchor", []string{"203.0.113.5:8000", "198.51.100.2:8000", "192.168.1.10:8000"}, "[::]:8000",
			"203.0.113.5:8000,198.51.100.2:8000,192.168.1.10:8000"},
		{"one host", []string{"10.0.0.2:8000"}, "10.0.0.2:8000", "10.0.0.2:8000"},
		{"nothing known", nil, "127.0.0.1:8000", "127.0.0.1:8000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := joinAddrs(tc.addrs, tc.listen); got != tc.want {
				t.Errorf("joinAddrs(%q, %q) = %q, want %q", tc.addrs, tc.listen, got, tc.want)
			}
		})
	}
}
