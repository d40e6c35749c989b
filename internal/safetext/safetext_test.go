package safetext

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello", "hello"},
		{"PING", "PING"},
		{"a\tb", "a b"},
		{"a\nb\rc\x00d\x7fe", "abcde"},
		{"red \x1b[31mtext\x1b[0m", "red text"},
		{"title \x1b]0;pwned\x07done", "title done"},
		{"osc st \x1b]8;;http://x\x1b\\link", "osc st link"},
		{"dcs \x1bP1$r0m\x1b\\after", "dcs after"},
		{"apc \x1b_hidden\x07shown", "apc shown"},
		{"bidi \u202eevil\u202c \u2066x\u2069", "bidi evil x"},
		{"marks \u200eleft\u200f\u061c", "marks left"},
		{"zero\u200bwidth\ufeff", "zerowidth"},
		{"c1 \u0085\u009b31m", "c1 31m"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"lone esc \x1b", "lone esc "},
		{"esc then newline \x1b\nx", "esc then newline x"},
	}
	for _, tc := range tests {
		got := Text(tc.in)
		if got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := Text(got); again != got {
			t.Errorf("Text not idempotent on %q: %q", got, again)
		}
	}
}

func TestName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "alice"},
		{"Bob Smith", "Bob Smith"},
		{"  bob  ", "bob"},
		{"../x", "_x"},
		{"/", "_"},
		{".", ""},
		{"..", ""},
		{"", ""},
		{"a\x00b\nc", "abc"},
		{"a\tb", "a b"},
		{"zero\u200bwidth", "zerowidth"},
		{"evil\u202etxt", "eviltxt"},
		{"a:b\\c", "a_b_c"},
		{"nul", "nul_"},
		{"con.x", "con_.x"},
		{"COM1", "COM1_"},
		{".meshfs-partials", "meshfs-partials"},
		{"x. . .", "x"},
		{"cafe\u0301", "caf\u00e9"},
		{"\x1b[31mred\x1b[0m", "red"},
		{strings.Repeat("x", 1000), strings.Repeat("x", 32)},
	}
	for _, tc := range tests {
		if got := Name(tc.in); got != tc.want {
			t.Errorf("Name(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDeviceName(t *testing.T) {
	for _, s := range []string{"NUL", "con.txt", "Aux", "COM1", "lpt9.log", "COM¹", "prn "} {
		if !DeviceName(s) {
			t.Errorf("DeviceName(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"console", "COM10", "LPTX", "nul_", "a.nul", ""} {
		if DeviceName(s) {
			t.Errorf("DeviceName(%q) = true, want false", s)
		}
	}
}

// FuzzName: any string becomes one printable component of at most
// MaxNameRunes runes, and both functions are idempotent.
func FuzzName(f *testing.F) {
	for _, s := range []string{"", ".", "..", "../x", "a/b", "nul", "con.txt", "a\x00b", "\u202e", "x. ",
		"é", "cafe\u0301", "\x1b[31mred", "\xff\xfe", `a\b`, strings.Repeat("é", 1000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Name(s)
		if again := Name(got); again != got {
			t.Fatalf("Name not idempotent: %q -> %q -> %q", s, got, again)
		}
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > MaxNameRunes {
			t.Fatalf("Name(%q) = %q: bad length or encoding", s, got)
		}
		if strings.ContainsAny(got, `/\:`) || strings.Contains(got, "..") || strings.HasPrefix(got, ".") || DeviceName(got) {
			t.Fatalf("Name(%q) = %q is not a safe component", s, got)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) || Hidden(r) {
				t.Fatalf("Name(%q) = %q keeps %U", s, got, r)
			}
		}
		text := Text(s)
		if Text(text) != text {
			t.Fatalf("Text not idempotent on %q", s)
		}
		for _, r := range text {
			if Hidden(r) || r == 0x1b {
				t.Fatalf("Text(%q) = %q keeps %U", s, text, r)
			}
		}
	})
}
