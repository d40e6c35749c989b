package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/meshfs/meshfs/internal/present"
	meshsync "github.com/meshfs/meshfs/sync"
)

// doctorReply is the node's answer to the doctor request: what the checks
// need to know that only the running node knows, since mount flags such as
// --state and --listen are not visible from the mount point.
type doctorReply struct {
	StateDir string          `json:"state_dir"`
	TreeRoot string          `json:"tree_root"` // where received files land: the FUSE backing folder or the plain folder
	Listen   string          `json:"listen"`
	NoFUSE   bool            `json:"no_fuse"`
	Release  string          `json:"release"` // the node's meshfs release, which may differ from this command's
	Status   meshsync.Status `json:"status"`
}

// doctorReply answers 'meshfs doctor MOUNTPOINT'.
func (d *daemon) doctorReply() doctorReply {
	return doctorReply{
		StateDir: d.opts.stateDir, TreeRoot: d.treeRoot(), Listen: d.node.Addr().String(),
		NoFUSE: d.opts.noFUSE, Release: releaseVersion(buildInfo()), Status: d.engine.Status(),
	}
}

// nodeChecks asks the node serving mnt for its state and checks it. If no
// node answers, that is the only finding: the rest needs one.
func nodeChecks(ctx context.Context, mnt string) []finding {
	var r doctorReply
	if err := callControl(ctx, mnt, controlRequest{Op: "doctor"}, &r); err != nil {
		return []finding{notServed(mnt, err)}
	}
	mode := "FUSE"
	if r.NoFUSE {
		mode = "plain folder"
	}
	found := []finding{passed("node", fmt.Sprintf("meshfs serves %s (%s)", mnt, mode))}
	found = append(found, checkStatePerms(r.StateDir)...)
	found = append(found, checkFreeSpace(r.TreeRoot, r.Status.Self.MaxFileSize, lowFree), checkListen(ctx, r.Listen))
	return append(found, checkMembers(r.Status.Peers, mnt, r.Release, time.Now())...)
}

// notServed explains a node that did not answer; a missing socket is the
// plain case of no node at all and needs no further detail.
func notServed(mnt string, err error) finding {
	detail := "no meshfs serves " + mnt
	if sock, serr := controlSocket(mnt); serr == nil {
		if _, serr := os.Stat(sock); !errors.Is(serr, fs.ErrNotExist) {
			detail += ": " + err.Error()
		}
	}
	return failed("node", detail, "start it with 'meshfs mount "+mnt+"'")
}

// checkStatePerms requires the state folder and the mesh folder to be 0700
// and the private keys in it 0600: anyone who reads node.key can pose as
// this member, and ca.key (on the admin) can make new members.
func checkStatePerms(dir string) []finding {
	const check = "state permissions"
	if runtime.GOOS == "windows" {
		return []finding{passed(check, "not checked on Windows, where access is set by ACLs rather than mode bits")}
	}
	meshDir := filepath.Join(dir, "mesh")
	keys, _ := filepath.Glob(filepath.Join(meshDir, "*.key"))
	want := map[string]fs.FileMode{dir: 0o700, meshDir: 0o700}
	for _, k := range keys {
		want[k] = 0o600
	}
	var bad []finding
	for _, path := range append([]string{dir, meshDir}, keys...) {
		if f, ok := checkPrivate(check, path, want[path]); !ok {
			bad = append(bad, f)
		}
	}
	if len(bad) > 0 {
		return bad
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = filepath.Base(k)
	}
	return []finding{passed(check, fmt.Sprintf("%s and its mesh/ are 0700, keys %s 0600", dir, strings.Join(names, ", ")))}
}

// checkPrivate reports whether path has no permission bits for group or
// others, and if not, the finding that says how to fix it.
func checkPrivate(check, path string, want fs.FileMode) (finding, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return failed(check, fmt.Sprintf("cannot check %s: %v", path, err), "make sure the node's state folder is intact"), false
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		who := "other users can reach the node's keys"
		if !fi.IsDir() {
			who = "other users can read this private key"
		}
		return failed(check, fmt.Sprintf("%s is %04o: %s", path, perm, who),
			fmt.Sprintf("chmod %o %s", want, path)), false
	}
	return finding{}, true
}

// lowFree is the free space below which doctor warns: the largest file
// accepted is bounded by free space (a receiver refuses what does not fit),
// and under 1 GiB an ordinary video or disk image no longer fits.
const lowFree = 1 << 30

// checkFreeSpace says how large a file the filesystem under the tree can
// take now, and warns when that is under low.
func checkFreeSpace(root string, maxFile int64, low uint64) finding {
	const check = "free space"
	free, err := diskFree(root)
	if err != nil {
		return warned(check, fmt.Sprintf("cannot measure free space under %s: %v", root, err), "check that the folder exists")
	}
	detail := fmt.Sprintf("%s free under %s: files up to %s are accepted", present.IEC(free), root,
		present.IEC(min(free, uint64(maxFile))))
	if free < low {
		return warned(check, detail+"; larger ones are refused until there is room", "free space on that filesystem")
	}
	return passed(check, detail)
}

// checkListen dials the node's listen address from this machine. It cannot
// tell whether other machines get through a firewall or NAT on the way,
// but a port that does not answer here answers nobody.
func checkListen(ctx context.Context, listen string) finding {
	const check = "listen port"
	addr := dialableAddr(listen)
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return failed(check, fmt.Sprintf("%s does not accept connections: %v", addr, err),
			"check that no local firewall (ufw, nftables) blocks the port, or restart the node with another --listen")
	}
	c.Close()
	return passed(check, fmt.Sprintf("%s accepts connections from this machine (whether other machines get through is not tested)", listen))
}

// dialableAddr turns a listen address with an unspecified host (":8000",
// "0.0.0.0:8000", "[::]:8000") into the loopback address of its family.
func dialableAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch ip := net.ParseIP(host); {
	case host == "" || ip != nil && ip.Equal(net.IPv4zero):
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// checkMembers gives findings per member: connected (always directly;
// meshfs has no relays) with its round-trip time, or offline, and the last
// problem sending to it; for a connected member also its clock and its
// release against ours.
func checkMembers(peers []meshsync.PeerStatus, mnt, release string, now time.Time) []finding {
	if len(peers) == 0 {
		return []finding{passed("members", "no other members yet; invite one with 'meshfs invite "+mnt+"'")}
	}
	var found []finding
	for _, p := range peers {
		check := "member " + p.Name
		switch {
		case p.State != "connected":
			found = append(found, warned(check, "offline, last seen "+present.Seen(p.LastSeen, now),
				"if "+p.Name+" should be up, check that it runs 'meshfs mount' and can reach this node's listen port"))
		case p.Problem != "":
			found = append(found, warned(check, fmt.Sprintf("connected, direct, RTT %s; last problem: %s", present.RTT(p.RTT), p.Problem),
				"see 'meshfs status "+mnt+"' for the file and its reason"))
		default:
			found = append(found, passed(check, fmt.Sprintf("connected, direct to %s, RTT %s", p.Addr, present.RTT(p.RTT))))
		}
		if p.State == "connected" {
			found = append(found, checkClock(p), checkVersion(p, release))
		}
	}
	return found
}

// Clock skew limits. Certificates and revocation lists carry times, so a
// clock minutes off can make a valid member's certificate look not yet
// valid, or expired, to the others.
const (
	skewWarn = 30 * time.Second
	skewFail = 5 * time.Minute
)

// checkClock judges a member's clock skew as measured by the keepalives.
func checkClock(p meshsync.PeerStatus) finding {
	check := "clock " + p.Name
	if p.ClockSkew == nil {
		return passed(check, "not measured yet (the next keepalive, within 10s, measures it)")
	}
	skew := *p.ClockSkew
	detail := fmt.Sprintf("%s's clock is %s %s this machine's", p.Name, skew.Abs().Round(time.Millisecond), aheadOrBehind(skew))
	if skew.Abs() < time.Millisecond {
		detail = fmt.Sprintf("%s's clock agrees with this machine's to within 1ms", p.Name) // closer than the estimate can tell
	}
	const fix = "turn on time sync (NTP) on both machines, e.g. sudo timedatectl set-ntp true"
	switch {
	case skew.Abs() > skewFail:
		return failed(check, detail+": over 5m, certificates and revocation lists carry times and may be misjudged", fix)
	case skew.Abs() > skewWarn:
		return warned(check, detail+": over 30s", fix)
	}
	return passed(check, detail)
}

func aheadOrBehind(d time.Duration) string {
	if d < 0 {
		return "behind"
	}
	return "ahead of"
}

// checkVersion compares a member's release with the node's. Connected
// members speak the same protocol, so a difference is only worth a warning.
func checkVersion(p meshsync.PeerStatus, release string) finding {
	check := "version " + p.Name
	switch {
	case p.Version == "":
		return passed(check, "not known (it sent none)")
	case p.Version != release:
		return warned(check, fmt.Sprintf("%s runs meshfs %s, this node %s (same protocol, so they work together)", p.Name, p.Version, release),
			"update the older one when convenient")
	}
	return passed(check, fmt.Sprintf("%s runs meshfs %s, as this node does", p.Name, p.Version))
}
