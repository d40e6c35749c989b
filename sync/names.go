package sync

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/meshfs/meshfs/internal/safetext"
	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Name limits for paths received from peers.
const (
	maxComponentLen = 255 // bytes of one path component
	maxComponents   = 32  // components in one relative path
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
	case safetext.DeviceName(c):
		return fmt.Errorf("component %q is a device name: %w", c, ErrInvalidName)
	}
	for _, r := range c {
		if r == '/' || r == '\\' || r == ':' || safetext.Hidden(r) {
			return fmt.Errorf("component %q has character %U: %w", c, r, ErrInvalidName)
		}
	}
	return nil
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

// safeName is a display name made safe to show and to use as an inbox
// folder name: safetext.Name,
// or "peer" when nothing usable is left.
func safeName(display string) string {
	if n := safetext.Name(display); n != "" {
		return n
	}
	return "peer"
}

// nameProblem is what a name check found, without the sentinel's words:
// the checks quote only the offered path, so it is safe to tell its sender.
func nameProblem(err error) string {
	return strings.TrimSuffix(err.Error(), ": "+ErrInvalidName.Error())
}
