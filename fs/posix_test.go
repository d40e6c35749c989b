//go:build linux

package fs

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// posixSkips lists the posixtest cases that test something outbox/ (and
// to/<name>/) deliberately does not offer, each with the reason.
var posixSkips = map[string]string{
	// File locks are not forwarded to the daemon (MountOptions.EnableLocks
	// is off: meshfs needs no locks shared with the backing tree). This case
	// expects a flock(2) conflict detected by the FUSE server between two
	// open file descriptions of one process.
	"FcntlFlockLocksFile": "lock forwarding is off",
}

// TestPosix runs go-fuse's POSIX conformance cases against outbox/, each in
// its own empty folder of one mount.
func TestPosix(t *testing.T) {
	m := mountTest(t)
	runPosix(t, m.path("outbox"))
}

// TestPosixTo runs them against a member's folder, to/bob/, which must
// behave as outbox/ does.
func TestPosixTo(t *testing.T) {
	m := mountTest(t)
	m.setMembers("bob")
	runPosix(t, m.path("to/bob"))
}

// runPosix runs each posixtest case but those of posixSkips in a folder of
// its own under top.
func runPosix(t *testing.T, top string) {
	var names []string
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if why, ok := posixSkips[name]; ok {
				t.Skip(why)
			}
			dir := filepath.Join(top, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			posixtest.All[name](t, dir)
		})
	}
}
