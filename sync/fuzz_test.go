package sync

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzValidatePath: a path from a peer's OFFER that validatePath accepts
// stays under the inbox folder once joined, has no empty, "." or ".."
// component, and validates to itself again (idempotent normalisation).
func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../../etc/passwd", "..", ".", "", "/etc/passwd", `a\b`, `C:\x`, `\\srv\s`,
		"a\x00b", "a\nb", "NUL", "con.txt", "COM1", "x.", "x ", "a:b", "cafe\u0301", "\u202eexe.txt", "a//b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := validatePath(p)
		if err != nil {
			return
		}
		if !utf8.ValidString(got) {
			t.Fatalf("validatePath(%q) = %q is not utf-8", p, got)
		}
		for _, c := range strings.Split(got, "/") {
			if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "\\\x00") {
				t.Fatalf("validatePath(%q) = %q has component %q", p, got, c)
			}
		}
		base := "/inbox/peer"
		if j := path.Join(base, got); !strings.HasPrefix(j, base+"/") {
			t.Fatalf("validatePath(%q) = %q escapes: %s", p, got, j)
		}
		if again, err := validatePath(got); err != nil || again != got {
			t.Fatalf("validatePath not idempotent: %q -> %q -> %q (%v)", p, got, again, err)
		}
	})
}
