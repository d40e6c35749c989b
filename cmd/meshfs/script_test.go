//go:build unix

package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
	"github.com/meshfs/meshfs/mesh"
	meshsync "github.com/meshfs/meshfs/sync"
	"github.com/rogpeppe/go-internal/testscript"
)

var update = flag.Bool("update", false, "rewrite the scripts' expected output on cmp failure")

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"meshfs": func() { os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI scripts in testdata/script: real meshfs
// processes (the test binary re-executed), real mounts where [fuse] holds.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		UpdateScripts:       *update,
		Deadline:            scriptsDeadline(t),
		Setup: func(env *testscript.Env) error {
			env.Setenv("XDG_STATE_HOME", env.WorkDir+"/xdg")
			env.Setenv("PROTOCOL", fmt.Sprintf("mesh %d, sync %d", mesh.ProtocolVersion, meshsync.Version))
			return nil
		},
		Condition: func(cond string) (bool, error) {
			if cond != "fuse" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			if err := testutil.FUSEError(); err != nil {
				if os.Getenv("MESHFS_REQUIRE_FUSE") == "1" {
					return false, fmt.Errorf("FUSE required but unavailable: %w", err)
				}
				return false, nil
			}
			return true, nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitmount": cmdWaitMount,
			"waitfile":  cmdWaitFile,
			"freeport":  cmdFreePort,
			"invite":    cmdInvite,
		},
	})
}

// scriptsTimeout bounds the whole run: a background node that ignores its
// signal, and so a 'wait' that would never return, is killed then and the
// script fails. Each script takes seconds.
const scriptsTimeout = 5 * time.Minute

// scriptsDeadline is scriptsTimeout from now, or the test's own deadline
// if that comes first.
func scriptsDeadline(t *testing.T) time.Time {
	d := time.Now().Add(scriptsTimeout)
	if td, ok := t.Deadline(); ok && td.Before(d) {
		return td
	}
	return d
}

// waitmount DIR: polls until DIR is a FUSE mount (statfs magic);
// ! waitmount DIR polls until it is not one.
func cmdWaitMount(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: [!] waitmount DIR")
	}
	dir := ts.MkAbs(args[0])
	err := testutil.WaitFor(30*time.Second, func() error {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return err
		}
		if fuse := st.Type == 0x65735546; fuse == neg {
			return fmt.Errorf("%s: FUSE mount %v, want %v", dir, fuse, !neg)
		}
		return nil
	})
	ts.Check(err)
}

// waitfile PATH [TEXT]: polls until PATH exists (and contains TEXT).
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfile PATH [TEXT]")
	}
	path := ts.MkAbs(args[0])
	err := testutil.WaitFor(30*time.Second, func() error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if len(args) == 2 && !strings.Contains(string(data), args[1]) {
			return fmt.Errorf("%s lacks %q", path, args[1])
		}
		return nil
	})
	if neg {
		if err == nil {
			ts.Fatalf("%s appeared", path)
		}
		return
	}
	ts.Check(err)
}

// freeport VAR: sets VAR to a free TCP port on 127.0.0.1.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ts.Setenv(args[0], strconv.Itoa(port))
}

// invite MOUNTPOINT VAR [FILE]: runs 'meshfs invite MOUNTPOINT' in the
// script's environment and sets VAR to the token, its last line of output;
// FILE, if given, gets the token as one line (for stdin).
func cmdInvite(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 && len(args) != 3 {
		ts.Fatalf("usage: invite MOUNTPOINT VAR [FILE]")
	}
	ts.Check(ts.Exec("meshfs", "invite", ts.MkAbs(args[0])))
	lines := strings.Split(strings.TrimSpace(ts.ReadFile("stdout")), "\n")
	token := lines[len(lines)-1]
	ts.Setenv(args[1], token)
	if len(args) == 3 {
		ts.Check(os.WriteFile(ts.MkAbs(args[2]), []byte(token+"\n"), 0o600))
	}
}
