// Package safetext makes text that came from another member safe to show
// and to use as a file name. It is the one place that decides which
// characters meshfs drops: every chat line, display name, address and
// reason shown in chat, peers, status or a log goes through Text, and every
// display name that becomes a folder goes through Name, so the same input
// reads the same at every member.
package safetext

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxNameRunes bounds a display name.
const MaxNameRunes = 32

// Text makes one line of peer-controlled text safe to print on a terminal,
// in a log or in the chat and peers files. Invalid UTF-8 becomes U+FFFD; a
// tab becomes a space; every other control character (C0, DEL, C1), whole
// escape sequences (CSI, OSC, DCS, APC, PM and two-byte ESC sequences) and
// the characters that hide or reorder text (Hidden) are removed. Text is
// idempotent.
func Text(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0x1b:
			i += escapeLen(s[i:])
			continue
		case r == '\t':
			b.WriteByte(' ')
		case !Hidden(r):
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// Hidden reports the characters no name or line may carry: control
// characters (C0, DEL, C1), zero-width characters and marks, and bidi
// embeddings, overrides and isolates. They hide or reorder text on a
// terminal, so "evil\u202etxt.exe" cannot pose as something else.
func Hidden(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E,
		r >= 0x2066 && r <= 0x2069, r == 0xFEFF, r == 0x061C:
		return true
	}
	return false
}

// escapeLen returns the length of the escape sequence at the start of s
// (which starts with ESC), so the whole sequence is dropped, not only ESC.
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[': // CSI: parameters and intermediates, then a final byte 0x40-0x7e
		for i := 2; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
			if s[i] < 0x20 || s[i] >= 0x7f { // not part of a CSI: stop before it
				return i
			}
		}
		return len(s)
	case ']', 'P', '_', '^': // OSC, DCS, APC, PM: up to BEL or ESC \
		for i := 2; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b {
				if i+1 < len(s) && s[i+1] == '\\' {
					return i + 2
				}
				return i
			}
		}
		return len(s)
	}
	if s[1] < 0x20 || s[1] >= 0x7f {
		return 1 // ESC followed by something that is not part of a sequence
	}
	return 2
}

// Name turns a display name into one that is safe on a terminal and as a
// single path component on any common file system: NFC-normalised,
// printable, no '/', '\' or ':' (each becomes '_'), no "..", no leading or
// trailing dot or space, not a Windows device name, at most MaxNameRunes
// runes. It returns "" when nothing usable is left. Name is idempotent.
func Name(s string) string {
	for range 8 { // each pass can expose more to trim; a fixed point comes fast
		next := nameStep(s)
		if next == s {
			break
		}
		s = next
	}
	return s
}

// nameStep is one pass of Name.
func nameStep(s string) string {
	s = norm.NFC.String(Text(s))
	s = strings.Map(func(r rune) rune {
		switch {
		case !unicode.IsPrint(r) && r != ' ':
			return -1
		case r == '/' || r == '\\' || r == ':':
			return '_'
		}
		return r
	}, s)
	s = norm.NFC.String(s)
	for strings.Contains(s, "..") {
		s = strings.ReplaceAll(s, "..", ".")
	}
	s = strings.TrimLeft(s, ". ")
	if rs := []rune(s); len(rs) > MaxNameRunes {
		s = string(rs[:MaxNameRunes])
	}
	s = strings.TrimRight(s, ". ")
	if DeviceName(s) {
		base, ext, dot := strings.Cut(s, ".")
		s = base + "_"
		if dot {
			s += "." + ext
		}
	}
	return s
}

// deviceNames are reserved on Windows with or without an extension.
var deviceNames = map[string]bool{"CON": true, "PRN": true, "AUX": true, "NUL": true}

// DeviceName reports names Windows reserves for devices, with or without
// an extension: "NUL", "con.txt", "COM1", "lpt9.log", "COM¹".
func DeviceName(c string) bool {
	base, _, _ := strings.Cut(c, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	if deviceNames[base] {
		return true
	}
	if !strings.HasPrefix(base, "COM") && !strings.HasPrefix(base, "LPT") {
		return false
	}
	rs := []rune(base)
	if len(rs) != 4 {
		return false
	}
	return rs[3] >= '0' && rs[3] <= '9' || rs[3] == '¹' || rs[3] == '²' || rs[3] == '³'
}
