package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// The text of the systemd user unit that 'meshfs service install' writes:
// its name, its quoting and the marker that lets uninstall tell it from a
// unit someone else wrote.

// unitMarker is the first line of every unit meshfs writes. Uninstall and
// a second install only touch a file that starts with it.
const unitMarker = "# Written by meshfs service install; meshfs service uninstall removes it."

// unitName is meshfs-<mount point escaped as by systemd-escape --path>.service.
// One self-contained unit per mount point, rather than instances of a shared
// meshfs@.service template, because each mount has its own flags (port,
// name, state): a template would need a second, per-instance file for them,
// and uninstall would have to decide when the shared template may go. The
// escaping is reversible, so two mount points never share a name, and it
// depends on the absolute path alone, so the name is stable.
func unitName(mnt string) (string, error) {
	name := "meshfs-" + escapePath(mnt) + ".service"
	if len(name) > 255 { // systemd's UNIT_NAME_MAX, less the NUL
		return "", fmt.Errorf("mount point %s: its unit name would be %d bytes, systemd allows 255", mnt, len(name))
	}
	return name, nil
}

// escapePath is systemd's unit_name_path_escape (systemd-escape --path) for
// an absolute, clean path: slashes become dashes, and a leading dot and every
// byte outside [A-Za-z0-9:_.] become \xNN.
func escapePath(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c == '.' && i == 0, !isUnitNameByte(c):
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isUnitNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(":_.", c) >= 0
}

// quoteWord writes s as one word of a systemd setting that splits and
// unquotes its value (ExecStart=, Environment=): bare when plainly safe,
// otherwise in double quotes with C escapes for backslash, quote and control
// bytes, and % doubled because systemd expands %-specifiers even in quotes.
// See systemd.syntax(7) "Quoting" and systemd.unit(5) "Specifiers".
func quoteWord(s string) string {
	if s != "" && strings.Trim(s, safeWordChars) == "" {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i]) // invalid UTF-8: systemd would drop the line
		case r == '\\' || r == '"':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '%':
			b.WriteString("%%")
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
		i += n
	}
	b.WriteByte('"')
	return b.String()
}

// safeWordChars need no quoting anywhere in a word. A word that is only ";"
// would separate commands, and one starting with @ - : + ! would be a prefix;
// neither can pass this test, and the executable path starts with /.
const safeWordChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-:=,+@"

// quoteExecArg quotes one argument after the executable in ExecStart= or
// ExecStop=. systemd substitutes $NAME and ${NAME} in those arguments (not
// in the executable path), so a literal $ is written $$.
func quoteExecArg(s string) string {
	return quoteWord(strings.ReplaceAll(s, "$", "$$"))
}

// execLine is the value of an ExecStart= or ExecStop= line.
func execLine(binary string, args []string) string {
	words := []string{quoteWord(binary)}
	for _, a := range args {
		words = append(words, quoteExecArg(a))
	}
	return strings.Join(words, " ")
}

// checkExecutablePath refuses what systemd refuses in an executable path
// ("Executable name contains special characters"): quotes, backslashes and
// control characters. Quoting cannot help there.
func checkExecutablePath(p string) error {
	if strings.ContainsAny(p, "\"'\\\x7f") || strings.IndexFunc(p, func(r rune) bool { return r < ' ' }) >= 0 {
		return fmt.Errorf("systemd cannot run %s: its path has quotes, backslashes or control characters; move meshfs elsewhere", p)
	}
	return nil
}

// unitSpec is everything one unit file says.
type unitSpec struct {
	mountpoint string   // absolute
	binary     string   // absolute, symbolic links resolved
	args       []string // after "mount MOUNTPOINT"
	env        []string // NAME=VALUE, set with Environment=
}

// render is the unit file's text.
func (u unitSpec) render() string {
	var b strings.Builder
	b.WriteString(unitMarker + "\n")
	b.WriteString("# To change the flags, run install again with the new ones.\n\n")
	// Description is taken literally but for specifiers; %q keeps it on one
	// line and never ending in a backslash, which would continue it.
	desc := strings.ReplaceAll(fmt.Sprintf("meshfs mount %q", u.mountpoint), "%", "%%")
	fmt.Fprintf(&b, "[Unit]\nDescription=%s\n\n[Service]\nType=exec\n", desc)
	for _, kv := range u.env {
		fmt.Fprintf(&b, "Environment=%s\n", quoteWord(kv))
	}
	fmt.Fprintf(&b, "ExecStart=%s\n", u.execStart())
	// "-": when the node has already exited (the failure that Restart=
	// answers), unmount finds nothing to stop; that is not a second failure.
	fmt.Fprintf(&b, "ExecStop=-%s\n", execLine(u.binary, []string{"unmount", u.mountpoint}))
	// RestartSec: a node that fails at once (port taken, no network) retries
	// every 5s rather than hitting systemd's start limit within a second.
	b.WriteString("Restart=on-failure\nRestartSec=5\n\n[Install]\nWantedBy=default.target\n")
	return b.String()
}

func (u unitSpec) execStart() string {
	return execLine(u.binary, append([]string{"mount", u.mountpoint}, u.args...))
}

// errForeignUnit means a unit file exists at meshfs's path but lacks the
// marker: meshfs neither replaces nor removes it.
var errForeignUnit = errors.New("not written by meshfs service install")

// checkOurUnit returns nil if path is a unit meshfs wrote, errForeignUnit
// if someone else wrote it, or the error from opening it (fs.ErrNotExist
// when there is none).
func checkOurUnit(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	first, _ := bufio.NewReader(f).ReadString('\n')
	if strings.TrimRight(first, "\n") != unitMarker {
		return fmt.Errorf("%s: %w (its first line is not %q); leaving it alone", path, errForeignUnit, unitMarker)
	}
	return nil
}

// writeUnit replaces path with text atomically, so systemd never reads half
// a unit.
func writeUnit(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".meshfs-unit-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
