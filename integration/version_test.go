//go:build linux

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

// TestVersionNamesTheBuild: 'meshfs --version' of a binary built from a
// git checkout names the commit, adds "-dirty" once the work tree has a
// change, and names the Go version and wire protocol. It builds from a
// fresh clone of this repository: the toolchain stamps VCS information
// only where .git is a folder, which a git worktree's is not.
func TestVersionNamesTheBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("clones the repository and builds meshfs twice")
	}
	clone := filepath.Join(t.TempDir(), "meshfs")
	if out, err := exec.Command("git", "clone", "-q", "..", clone).CombinedOutput(); err != nil {
		t.Skipf("cannot clone the repository (not a git checkout?): %v: %s", err, out)
	}
	head := run(t, clone, "git", "rev-parse", "HEAD")
	if got := versionOf(t, clone); !matches(got, `(?m)^  commit    `+head+`$`) {
		t.Errorf("a clean build says\n%s\nwant commit %s", got, head)
	}
	if err := os.WriteFile(filepath.Join(clone, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := versionOf(t, clone)
	for _, re := range []string{
		`(?m)^meshfs \S+$`,
		`(?m)^  commit    ` + head + `-dirty$`,
		`(?m)^  go        ` + regexp.QuoteMeta(runtime.Version()) + `$`,
		`(?m)^  protocol  mesh [0-9]+, sync [0-9]+$`,
	} {
		if !matches(got, re) {
			t.Errorf("a build with a changed file says\n%s\nwhich does not match %s", got, re)
		}
	}
}

// versionOf builds meshfs in dir with VCS stamping and runs --version.
func versionOf(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "meshfs")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/meshfs")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("meshfs --version: %v: %s", err, out)
	}
	return string(out)
}

func matches(s, re string) bool { return regexp.MustCompile(re).MatchString(s) }
