package mesh

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the import arrows: mesh reaches none of meshfs's upper
// layers, FUSE or fsnotify, imports only the standard library, and its
// non-test code does not import "testing".
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := []string{"github.com/meshfs/meshfs/sync", "github.com/meshfs/meshfs/fs",
		"github.com/hanwen/go-fuse", "github.com/fsnotify/fsnotify", "testing"}
	for line := range strings.Lines(string(out)) {
		pkg, std, _ := strings.Cut(strings.TrimSpace(line), " ")
		for _, f := range forbidden {
			if pkg == f || strings.HasPrefix(pkg, f+"/") {
				t.Errorf("mesh depends on %s", pkg)
			}
		}
		if std != "true" && pkg != "github.com/meshfs/meshfs/mesh" {
			t.Errorf("mesh imports non-standard package %s", pkg)
		}
	}
}
