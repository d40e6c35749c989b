package sync

import (
	"errors"
	"strings"
	"testing"
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
