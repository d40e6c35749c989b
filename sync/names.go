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

// Programs that write a file under a temporary name and rename it when done
// (editors, downloaders, git, sed -i) would otherwise send every half-done
// draft. Names of this shape are never sent; the final name is, when the
// rename reports it.
var (
	tempSuffixes = []string{
		"~",                         // editors' backups
		".tmp", ".part", ".partial", // common temporary names
		".crdownload",                       // Chromium downloads
		".swp", ".swo", ".swx", ".kate-swp", // vim and kate swap files
		".lock", // git (index.lock, HEAD.lock), and others
	}
	tempPrefixes = []string{
		".#",                                            // emacs lock links
		".goutputstream-",                               // GNOME's atomic saves
		".~lock.",                                       // LibreOffice locks
		"tmp_obj_", "tmp_pack_", "tmp_idx_", "tmp_rev_", // git objects and packs being written
	}
)

// temporaryName reports whether base is a name a program writes under
// before it renames the file to its real name: such a file is never sent.
func temporaryName(base string) bool {
	switch {
	case base == "4913": // vim checks it may write a folder with this file
		return true
	case len(base) > 2 && strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#"): // emacs auto-save
		return true
	case len(base) == 9 && strings.HasPrefix(base, "sed") && alnum(base[3:]): // sed -i
		return true
	}
	for _, s := range tempSuffixes {
		if strings.HasSuffix(base, s) {
			return true
		}
	}
	for _, p := range tempPrefixes {
		if strings.HasPrefix(base, p) {
			return true
		}
	}
	return false
}

// heldName reports whether base starts with a dot. Real dotfiles
// (.gitignore, .env) are sent, but only once they stay unchanged for
// Config.DotHold after their last close: rsync writes every file as
// .name.XXXXXX and renames it, and other tools use dot names for drafts
// too, so a dot name that is renamed or deleted within the hold is never
// sent.
func heldName(base string) bool { return strings.HasPrefix(base, ".") }

func alnum(s string) bool {
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
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
