package fs

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestFusefsName: go-fuse's fs package is always imported as fusefs, so
// "fs" in this package means only meshfs's own. (Which packages fs may
// import is checked for the whole module by internal/layers.)
func TestFusefsName(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "github.com/hanwen/go-fuse/v2/fs" && (imp.Name == nil || imp.Name.Name != "fusefs") {
				t.Errorf("%s imports go-fuse fs without the name fusefs", name)
			}
		}
	}
}
