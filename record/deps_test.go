package record

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImports keeps the package pure: the standard library and the three
// meshfs packages it was built on, nothing else (not even testing).
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := []string{
		"github.com/meshfs/meshfs/mesh",
		"github.com/meshfs/meshfs/internal/wire",
		"github.com/meshfs/meshfs/internal/safetext",
	}
	for imp := range strings.FieldsSeq(string(out)) {
		first, _, _ := strings.Cut(imp, "/")
		standard := !strings.Contains(first, ".")
		if imp == "testing" || !standard && !slices.Contains(allowed, imp) {
			t.Errorf("record imports %s", imp)
		}
	}
}
