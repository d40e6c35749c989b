package fs

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImports checks the package's import rules on its non-test files: it
// never imports mesh or sync (the Syncer interface stands in for sync) nor
// testing. It parses the files rather than running `go list`, so it does
// not exec a subprocess. fs's other imports (go-fuse, x/sys, the standard
// library) cannot reach meshfs packages, so direct imports are enough.
func TestImports(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{
		"github.com/meshfs/meshfs/mesh",
		"github.com/meshfs/meshfs/sync",
		"testing",
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("%s imports %s", name, path)
				}
			}
			if strings.HasPrefix(path, "github.com/meshfs/meshfs/") {
				t.Errorf("%s imports meshfs package %s; fs depends on no other meshfs package", name, path)
			}
			if path == "github.com/hanwen/go-fuse/v2/fs" && (imp.Name == nil || imp.Name.Name != "fusefs") {
				t.Errorf("%s imports go-fuse fs without the name fusefs", name)
			}
		}
	}
}
