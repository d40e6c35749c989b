package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	meshsync "github.com/meshfs/meshfs/sync"
)

func TestCheckStatePerms(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits are not checked on Windows")
	}
	tests := []struct {
		name      string
		dir, key  os.FileMode
		wantFixes []string // relative to the state folder
	}{
		{"private", 0o700, 0o600, nil},
		{"group-readable folder", 0o750, 0o600, []string{"chmod 700 ."}},
		{"world-readable key", 0o700, 0o644, []string{"chmod 600 mesh/node.key"}},
		{"both", 0o755, 0o640, []string{"chmod 700 .", "chmod 600 mesh/node.key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			key := filepath.Join(dir, "mesh", "node.key")
			if err := os.Mkdir(filepath.Join(dir, "mesh"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(key, []byte("secret"), tc.key); err != nil {
				t.Fatal(err)
			}
			os.Chmod(key, tc.key) // past the umask
			os.Chmod(dir, tc.dir)
			got := checkStatePerms(dir)
			var fixes []string
			for _, f := range got {
				if f.Status == statusFail {
					fixes = append(fixes, strings.Replace(strings.Replace(f.Fix, key, "mesh/node.key", 1), dir, ".", 1))
				}
			}
			if strings.Join(fixes, "|") != strings.Join(tc.wantFixes, "|") {
				t.Errorf("checkStatePerms fixes = %q, want %q (findings %+v)", fixes, tc.wantFixes, got)
			}
		})
	}
}

func TestCheckMembers(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		peers  []meshsync.PeerStatus
		status string
		detail string
	}{
		{"alone", nil, statusOK, "no other members yet; invite one with 'meshfs invite /m'"},
		{"connected", []meshsync.PeerStatus{{Name: "bob", State: "connected", Addr: "10.0.0.2:7000", RTT: 2 * time.Millisecond}},
			statusOK, "connected, direct to 10.0.0.2:7000, RTT 2.0ms"},
		{"offline", []meshsync.PeerStatus{{Name: "bob", State: "offline", LastSeen: now.Add(-3 * time.Hour)}},
			statusWarn, "offline, last seen 3h ago"},
		{"refused", []meshsync.PeerStatus{{Name: "bob", State: "connected", RTT: time.Millisecond, Problem: "refused: disk full"}},
			statusWarn, "connected, direct, RTT 1.0ms; last problem: refused: disk full"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := checkMembers(tc.peers, "/m", "v1", now)
			if len(got) == 0 || got[0].Status != tc.status || got[0].Detail != tc.detail {
				t.Fatalf("checkMembers = %+v, want first a %s finding %q", got, tc.status, tc.detail)
			}
			connected := len(tc.peers) > 0 && tc.peers[0].State == "connected"
			if want := map[bool]int{true: 3, false: 1}[connected]; len(got) != want {
				t.Errorf("checkMembers gave %d findings, want %d (clock and version only when connected)", len(got), want)
			}
			if (got[0].Fix == "") != (tc.status == statusOK) {
				t.Errorf("checkMembers fix = %q for status %s", got[0].Fix, got[0].Status)
			}
		})
	}
}

func TestCheckClock(t *testing.T) {
	skew := func(d time.Duration) *time.Duration { return &d }
	tests := []struct {
		skew   *time.Duration
		status string
		detail string
	}{
		{nil, statusOK, "not measured yet"},
		{skew(300 * time.Microsecond), statusOK, "bob's clock agrees with this machine's to within 1ms"},
		{skew(12 * time.Millisecond), statusOK, "bob's clock is 12ms ahead of this machine's"},
		{skew(-30 * time.Second), statusOK, "30s behind"},
		{skew(-31 * time.Second), statusWarn, "31s behind this machine's: over 30s"},
		{skew(5 * time.Minute), statusWarn, "5m0s ahead"},
		{skew(5*time.Minute + time.Second), statusFail, "certificates and revocation lists carry times"},
		{skew(-time.Hour), statusFail, "1h0m0s behind"},
	}
	for _, tc := range tests {
		f := checkClock(meshsync.PeerStatus{Name: "bob", State: "connected", ClockSkew: tc.skew})
		if f.Status != tc.status || !strings.Contains(f.Detail, tc.detail) || (f.Fix == "") != (tc.status == statusOK) {
			t.Errorf("checkClock(%v) = %+v, want %s with %q", tc.skew, f, tc.status, tc.detail)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	tests := []struct{ theirs, ours, status string }{
		{"v1.2.0", "v1.2.0", statusOK},
		{"v1.1.0", "v1.2.0", statusWarn},
		{"", "v1.2.0", statusOK},
	}
	for _, tc := range tests {
		if f := checkVersion(meshsync.PeerStatus{Name: "bob", Version: tc.theirs}, tc.ours); f.Status != tc.status {
			t.Errorf("checkVersion(%q against %q) = %+v, want %s", tc.theirs, tc.ours, f, tc.status)
		}
	}
}

func TestCheckListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := ln.Addr().String()
	if f := checkListen(t.Context(), open); f.Status != statusOK {
		t.Errorf("checkListen(%s) = %+v, want ok", open, f)
	}
	ln.Close()
	if f := checkListen(t.Context(), open); f.Status != statusFail || !strings.Contains(f.Detail, open) {
		t.Errorf("checkListen(closed %s) = %+v, want a failure naming it", open, f)
	}
}

func TestDialableAddr(t *testing.T) {
	for in, want := range map[string]string{
		":7000":          "127.0.0.1:7000",
		"0.0.0.0:7000":   "127.0.0.1:7000",
		"[::]:7000":      "[::1]:7000",
		"10.0.0.1:7000":  "10.0.0.1:7000",
		"example.net:70": "example.net:70",
	} {
		if got := dialableAddr(in); got != want {
			t.Errorf("dialableAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckFreeSpace(t *testing.T) {
	dir := t.TempDir()
	if f := checkFreeSpace(dir, 1<<20, 1); f.Status != statusOK || !strings.Contains(f.Detail, "files up to 1.0 MiB are accepted") {
		t.Errorf("checkFreeSpace(limit 1 MiB) = %+v, want ok with files up to 1.0 MiB", f)
	}
	if f := checkFreeSpace(dir, 1<<40, 1<<62); f.Status != statusWarn || !strings.Contains(f.Fix, "free space") {
		t.Errorf("checkFreeSpace(less free than low) = %+v, want a warning to free space", f)
	}
	if f := checkFreeSpace(filepath.Join(dir, "gone"), 1, 1); f.Status != statusWarn {
		t.Errorf("checkFreeSpace(missing folder) = %+v, want a warning", f)
	}
}

func TestPrintFindings(t *testing.T) {
	found := []finding{
		passed("a", "fine"),
		failed("b", "broken", "mend it"),
	}
	var text bytes.Buffer
	if err := printFindings(&text, found, false); err != nil {
		t.Fatal(err)
	}
	want := "ok    a: fine\nfail  b: broken\n      fix: mend it\n"
	if text.String() != want {
		t.Errorf("printFindings text = %q, want %q", text.String(), want)
	}
	var js bytes.Buffer
	if err := printFindings(&js, found, true); err != nil {
		t.Fatal(err)
	}
	var back []map[string]string
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("printFindings JSON %s: %v", js.Bytes(), err)
	}
	if len(back) != 2 || back[1]["check"] != "b" || back[1]["status"] != "fail" || back[1]["detail"] != "broken" || back[1]["fix"] != "mend it" {
		t.Errorf("printFindings JSON = %v, want the two findings with check, status, detail and fix", back)
	}
	if n := countFailed(found); n != 1 {
		t.Errorf("countFailed = %d, want 1", n)
	}
}
