package sync

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the import arrows: sync never reaches the fs package or
// go-fuse (fsnotify is fine: the plain-folder mode lives here), and
// non-test code never imports testing.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-mod=readonly", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "github.com/meshfs/meshfs/fs", strings.HasPrefix(dep, "github.com/meshfs/meshfs/fs/"),
			strings.HasPrefix(dep, "github.com/meshfs/meshfs/cmd"),
			strings.HasPrefix(dep, "github.com/hanwen/go-fuse"):
			t.Errorf("sync depends on %s", dep)
		case dep == "testing":
			t.Errorf("non-test code of sync imports testing")
		}
	}
}
