package sync

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestValidatePath(t *testing.T) {
	long := strings.Repeat("a", 256)
	tests := []struct {
		in   string
		want string // "" means rejected
	}{
		// bad-inputs row 26: traversal, absolute, separators
		{"../../etc/passwd", ""},
		{"..", ""},
		{".", ""},
		{"", ""},
		{"/etc/passwd", ""},
		{"a\\b", ""},
		{"C:\\x", ""},
		{"\\\\srv\\s", ""},
		{"a//b", ""},
		{"a/./b", ""},
		// row 27: control, escape, bidi, zero-width
		{"a\x00b", ""},
		{"a\nb", ""},
		{"a\x1b[31mb", ""},
		{"a\u202eb", ""},
		{"a\u200bb", ""},
		{"a\x7fb", ""},
		// row 28: long and invalid UTF-8
		{long, ""},
		{strings.Repeat("x/", 33) + "x", ""},
		{"a\xffb", ""},
		// row 29: Windows-hostile
		{"NUL", ""},
		{"con.txt", ""},
		{"COM1", ""},
		{"lpt9.log", ""},
		{"trail.", ""},
		{"trail ", ""},
		{"a:b", ""},
		// reserved
		{".meshfs-partials/x", ""},
		{".MESHFS", ""},
		// good ones; NFD becomes NFC
		{"a/b", "a/b"},
		{"report.pdf", "report.pdf"},
		{"tree/sub/n.txt", "tree/sub/n.txt"},
		{"cafe\u0301.txt", "caf\u00e9.txt"},
		{"a|b", "a|b"},
		{"console.txt", "console.txt"},
		{"COM10", "COM10"},
		{".bashrc", ".bashrc"},
		{strings.Repeat("a", 255), strings.Repeat("a", 255)},
	}
	for _, tc := range tests {
		got, err := validatePath(tc.in)
		if tc.want == "" {
			if err == nil || !errors.Is(err, ErrInvalidName) {
				t.Errorf("validatePath(%q) = %q, %v, want ErrInvalidName", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("validatePath(%q) = %q, %v, want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		// bad-inputs row 31: peer display names
		{"../x", "_x"},
		{"a..b", "a.b"},
		{"/", "_"},
		{".", "peer"},
		{"..", "peer"},
		{"", "peer"},
		{strings.Repeat("n", 1000), strings.Repeat("n", 32)},
		{"a\x00b", "ab"},
		{"alice", "alice"},
		{"Bob Smith", "Bob Smith"},
		{"nul", "nul_"},
		{"con.x", "con_.x"},
		{"a:b\\c", "a_b_c"},
		{"evil\u202etxt", "eviltxt"},
		{".meshfs-partials", "meshfs-partials"},
		{"x. . .", "x"},
	}
	for _, tc := range tests {
		if got := sanitizeName(tc.in); got != tc.want {
			t.Errorf("sanitizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSanitizeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hi", "hi"},
		{"a\tb", "a\tb"},
		{"red \x1b[31mtext\x1b[0m", "red text"},
		{"title \x1b]0;pwned\x07 done", "title  done"},
		{"osc \x1b]8;;http://x\x1b\\link", "osc link"},
		{"line\nbreak\r", "linebreak"},
		{"bidi \u202eevil\u2066x\u2069", "bidi evilx"},
		{"c1 \u0085 \u009b", "c1  "},
		{"bad \xff utf8", "bad  utf8"},
		{"del\x7f", "del"},
	}
	for _, tc := range tests {
		if got := sanitizeText(tc.in); got != tc.want {
			t.Errorf("sanitizeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNumberedName(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"same.txt", 0, "same.txt"},
		{"same.txt", 1, "same (1).txt"},
		{"README", 2, "README (2)"},
		{"archive.tar.gz", 1, "archive.tar (1).gz"},
		{".bashrc", 1, ".bashrc (1)"},
	}
	for _, tc := range tests {
		if got := numberedName(tc.in, tc.n); got != tc.want {
			t.Errorf("numberedName(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	if got := numberedName(strings.Repeat("é", 200)+".txt", 3); len(got) > maxComponentLen || !utf8.ValidString(got) {
		t.Errorf("numberedName(long) = %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

func TestFoldKey(t *testing.T) {
	if foldKey("README") != foldKey("readme") {
		t.Errorf("foldKey: README and readme differ")
	}
	if foldKey("caf\u00e9") != foldKey("CAFE\u0301") {
		t.Errorf("foldKey: NFC and NFD é differ")
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", ".", "..", "../x", "a/b", "nul", "con.txt", "a\x00b", "\u202e", "x. ", "é", "cafe\u0301", strings.Repeat("ab", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := sanitizeName(s)
		if again := sanitizeName(got); again != got {
			t.Fatalf("sanitizeName not idempotent: %q -> %q -> %q", s, got, again)
		}
		if strings.Contains(got, "/") || strings.Contains(got, "..") {
			t.Fatalf("sanitizeName(%q) = %q has a separator or is ..", s, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || badRune(r) {
				t.Fatalf("sanitizeName(%q) = %q has control %U", s, got, r)
			}
		}
		if err := validateComponent(got); err != nil {
			t.Fatalf("sanitizeName(%q) = %q is not a valid component: %v", s, got, err)
		}
		text := sanitizeText(s)
		if sanitizeText(text) != text {
			t.Fatalf("sanitizeText not idempotent on %q", s)
		}
		if strings.ContainsAny(text, "\x1b\n\r\x00") {
			t.Fatalf("sanitizeText(%q) = %q keeps a control", s, text)
		}
	})
}
