// Package layers holds the test that keeps meshfs's import arrows pointing
// one way:
//
//	cmd/meshfs -> fs, folder, ui, sync
//	ui -> sync
//	sync -> chat -> record -> mesh -> internal/{atomicfile,safetext,wire}
//	sync -> internal/present
//	cmd/meshfs -> portmap (the router; no meshfs package)
//	seal (encryption to members' keys; no meshfs package, used by no one yet)
//
// fs and folder are the two frontends; they declare the calls they make
// into sync as interfaces and import no other meshfs package but
// internal/atomicfile (folder). mesh is a library of its own: the standard
// library and three small internal helpers.
package layers

import (
	"slices"
	"strings"
	"testing"

	"github.com/meshfs/meshfs/internal/testutil"
)

const module = testutil.Module

// allowed lists, for each package, the meshfs packages it may reach
// (directly or not) and the outside modules it may import directly.
var allowed = map[string]struct {
	meshfs  []string
	outside []string // module path prefixes; the standard library is always allowed
}{
	"internal/atomicfile": {},
	"internal/wire":       {},
	"internal/present":    {},
	"internal/safetext":   {outside: []string{"golang.org/x/text"}},
	// The UDP path of hole punching: QUIC and STUN messages.
	"mesh": {
		meshfs:  []string{"internal/atomicfile", "internal/safetext", "internal/wire"},
		outside: []string{"github.com/quic-go/quic-go", "github.com/pion/stun/v3"},
	},
	"record": {meshfs: []string{"mesh", "internal/atomicfile", "internal/safetext", "internal/wire"}},
	"chat":   {meshfs: []string{"mesh", "record", "internal/atomicfile", "internal/safetext", "internal/wire"}},
	"sync": {
		meshfs:  []string{"mesh", "record", "chat", "seal", "internal/atomicfile", "internal/present", "internal/safetext", "internal/wire"},
		outside: []string{"github.com/zeebo/blake3", "golang.org/x/sys", "golang.org/x/text"},
	},
	"folder": {
		meshfs:  []string{"internal/atomicfile"},
		outside: []string{"github.com/fsnotify/fsnotify", "golang.org/x/sys"},
	},
	"fs": {outside: []string{"github.com/hanwen/go-fuse/v2", "golang.org/x/sys"}},
	// The page reads sync's Status and chat's errors; it sits beside the
	// frontends and reaches neither.
	"ui": {meshfs: []string{"sync", "mesh", "record", "chat", "seal", "internal/atomicfile", "internal/present", "internal/safetext", "internal/wire"}},
	// Port mapping talks to the router only; cmd/meshfs hands its result
	// to mesh.
	"portmap": {outside: []string{"github.com/huin/goupnp", "github.com/jackpal/go-nat-pmp"}},
	// Encryption to a member's certified key: age and the curve, no meshfs
	// package, since its callers pass the keys in.
	"seal": {outside: []string{"filippo.io/age", "filippo.io/edwards25519"}},
}

// TestArrows fails when a package reaches a meshfs package or imports an
// outside module that its layer does not allow.
func TestArrows(t *testing.T) {
	seen := 0
	for _, p := range testutil.GoList(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		rule, ok := allowed[rel]
		if !ok {
			continue
		}
		seen++
		for _, dep := range p.Deps {
			if d, ok := strings.CutPrefix(dep, module+"/"); ok && !slices.Contains(rule.meshfs, d) {
				t.Errorf("%s reaches %s", rel, d)
			}
			if dep == "testing" {
				t.Errorf("non-test code of %s imports testing", rel)
			}
		}
		for _, imp := range p.Imports {
			if isStandard(imp) || strings.HasPrefix(imp, module+"/") {
				continue
			}
			if !slices.ContainsFunc(rule.outside, func(m string) bool { return imp == m || strings.HasPrefix(imp, m+"/") }) {
				t.Errorf("%s imports %s", rel, imp)
			}
		}
	}
	if seen != len(allowed) {
		t.Errorf("go list found %d of the %d packages the rules name", seen, len(allowed))
	}
}

// isStandard reports whether an import path is in the standard library:
// its first element has no dot.
func isStandard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}
