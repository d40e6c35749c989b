package sync

import (
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Name limits for paths received from peers.
const (
	maxComponentLen = 255 // bytes of one path component
	maxComponents   = 32  // components in one relative path
	maxDisplayRunes = 32  // runes of a sanitised display name / folder name
	hiddenPrefix    = ".meshfs"
)

// validatePath checks a relative '/'-separated path from a peer and returns
// it NFC-normalised. It never touches the disk.
func validatePath(p string) (string, error) {
	if len(p) > maxPathLen {
		return "", fmt.Errorf("path of %d bytes: %w", len(p), ErrInvalidName)
	}
	if !utf8.ValidString(p) {
		return "", fmt.Errorf("path not utf-8: %w", ErrInvalidName)
	}
	parts := strings.Split(norm.NFC.String(p), "/")
	if len(parts) > maxComponents {
		return "", fmt.Errorf("path of %d components: %w", len(parts), ErrInvalidName)
	}
	for _, c := range parts {
		if err := validateComponent(c); err != nil {
			return "", err
		}
	}
	return strings.Join(parts, "/"), nil
}

// validateComponent checks one path component: safe on Linux, portable to
// Windows and macOS, and never one of our hidden names.
func validateComponent(c string) error {
	switch {
	case c == "" || c == "." || c == "..":
		return fmt.Errorf("component %q: %w", c, ErrInvalidName)
	case len(c) > maxComponentLen:
		return fmt.Errorf("component of %d bytes: %w", len(c), ErrInvalidName)
	case !utf8.ValidString(c):
		return fmt.Errorf("component not utf-8: %w", ErrInvalidName)
	case strings.HasSuffix(c, ".") || strings.HasSuffix(c, " "):
		return fmt.Errorf("component %q ends in dot or space: %w", c, ErrInvalidName)
	case strings.HasPrefix(strings.ToLower(c), hiddenPrefix):
		return fmt.Errorf("component %q is reserved: %w", c, ErrInvalidName)
	case isDeviceName(c):
		return fmt.Errorf("component %q is a device name: %w", c, ErrInvalidName)
	}
	for _, r := range c {
		if r == '/' || r == '\\' || r == ':' || badRune(r) {
			return fmt.Errorf("component %q has character %U: %w", c, r, ErrInvalidName)
		}
	}
	return nil
}

// badRune reports control characters (C0, DEL, C1), zero-width and bidi
// formatting characters: they hide or reorder text on a terminal.
func badRune(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E,
		r >= 0x2066 && r <= 0x2069, r == 0xFEFF, r == 0x061C:
		return true
	}
	return false
}

// deviceNames are reserved on Windows with or without an extension.
var deviceNames = map[string]bool{"CON": true, "PRN": true, "AUX": true, "NUL": true}

// isDeviceName reports names like "NUL", "con.txt", "COM1", "lpt9.log".
func isDeviceName(c string) bool {
	base, _, _ := strings.Cut(c, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	if deviceNames[base] {
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) {
		return base[3] >= '0' && base[3] <= '9'
	}
	rs := []rune(base)
	if len(rs) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) {
		return rs[3] == '¹' || rs[3] == '²' || rs[3] == '³'
	}
	return false
}

// sanitizeName turns any string (a peer's display name) into one safe path
// component of at most maxDisplayRunes runes; "" becomes "peer". It is
// idempotent: sanitizeName(sanitizeName(s)) == sanitizeName(s).
func sanitizeName(s string) string {
	for range 8 {
		next := sanitizeStep(s)
		if next == s {
			break
		}
		s = next
	}
	if s == "" {
		return "peer"
	}
	return s
}

// sanitizeStep is one pass of sanitizeName; repeated to a fixed point.
func sanitizeStep(s string) string {
	s = norm.NFC.String(strings.ToValidUTF8(s, ""))
	s = strings.Map(func(r rune) rune {
		switch {
		case badRune(r):
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
	if rs := []rune(s); len(rs) > maxDisplayRunes {
		s = string(rs[:maxDisplayRunes])
	}
	s = strings.TrimRight(s, ". ")
	if isDeviceName(s) {
		base, ext, dot := strings.Cut(s, ".")
		s = base + "_"
		if dot {
			s += "." + ext
		}
	}
	return s
}

// sanitizeText strips what must never reach a terminal from one line of
// text: C0 controls but tab, DEL, C1, ESC sequences, bidi overrides and
// isolates. Invalid UTF-8 is dropped.
func sanitizeText(s string) string {
	s = strings.ToValidUTF8(s, "")
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == 0x1b {
			i += escapeLen(s[i:])
			continue
		}
		i += n
		if r == '\t' || !(unicode.IsControl(r) || r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// escapeLen returns the length of the ESC sequence at the start of s: CSI
// (ESC [ ... final byte), OSC (ESC ] ... BEL or ESC \) or ESC plus one byte.
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[':
		for i := 2; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return len(s)
	case ']':
		for i := 2; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return len(s)
	}
	_, n := utf8.DecodeRuneInString(s[1:])
	return 1 + n
}

// ignoredOutboxName reports outbox paths that are not sent (yet): hidden
// names and the usual temporary names of editors and downloaders. They are
// sent once renamed.
func ignoredOutboxName(rel string) bool {
	for _, c := range strings.Split(rel, "/") {
		if strings.HasPrefix(c, ".") {
			return true
		}
	}
	base := path.Base(rel)
	return strings.HasSuffix(base, ".part") || strings.HasSuffix(base, ".tmp") || strings.HasSuffix(base, "~")
}

// foldKey is the form two names are compared in for clashes: NFC and
// case-folded, so "README" and "readme", or NFC and NFD "é", clash.
func foldKey(name string) string {
	return cases.Fold().String(norm.NFC.String(name))
}

// numberedName returns name for n == 0, else "base (n).ext", cut to fit
// one component.
func numberedName(name string, n int) string {
	if n == 0 {
		return name
	}
	ext := path.Ext(name)
	base := strings.TrimSuffix(name, ext)
	if base == "" {
		base, ext = name, ""
	}
	suffix := fmt.Sprintf(" (%d)%s", n, ext)
	return truncateUTF8(base, maxComponentLen-len(suffix)) + suffix
}
