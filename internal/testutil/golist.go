package testutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// Module is the module path of meshfs.
const Module = "github.com/meshfs/meshfs"

// GoPackage is what `go list -json` says of one package: the fields the
// module-wide tests (import arrows, log fixes) read.
type GoPackage struct {
	ImportPath     string
	Dir            string
	GoFiles        []string
	IgnoredGoFiles []string // built only on other systems (_windows.go, _darwin.go)
	Imports        []string
	Deps           []string
	Standard       bool
}

// GoList lists every package of the module with `go list -json`, failing
// t if it cannot.
func GoList(t *testing.T) []GoPackage {
	t.Helper()
	pkgs, err := goList(Module + "/...")
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func goList(pattern string) ([]GoPackage, error) {
	out, err := exec.Command("go", "list", "-mod=readonly", "-json", pattern).Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var pkgs []GoPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p GoPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs, nil
		} else if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}
