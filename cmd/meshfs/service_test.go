//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestQuoteWord(t *testing.T) {
	tests := []struct {
		name, in, word, arg string // arg: as an ExecStart argument
	}{
		{"plain", "/home/a/mesh", "/home/a/mesh", "/home/a/mesh"},
		{"flag with value", "--listen=127.0.0.1:8000", "--listen=127.0.0.1:8000", "--listen=127.0.0.1:8000"},
		{"empty", "", `""`, `""`},
		{"space", "my mesh", `"my mesh"`, `"my mesh"`},
		{"percent is a specifier", "100%", `"100%%"`, `"100%%"`},
		{"dollar is a variable in arguments only", "$HOME", `"$HOME"`, `"$$HOME"`},
		{"braced variable", "${X}", `"${X}"`, `"$${X}"`},
		{"double quote", `say "hi"`, `"say \"hi\""`, `"say \"hi\""`},
		{"single quote", "it's", `"it's"`, `"it's"`},
		{"backslash", `a\b`, `"a\\b"`, `"a\\b"`},
		{"lone semicolon separates commands", ";", `";"`, `";"`},
		{"escaped semicolon", `\;`, `"\\;"`, `"\\;"`},
		{"newline and tab", "a\nb\tc", `"a\nb\tc"`, `"a\nb\tc"`},
		{"control byte", "a\x01b", `"a\x01b"`, `"a\x01b"`},
		{"UTF-8 stays", "café", `"café"`, `"café"`},
		{"invalid UTF-8", "a\xffb", `"a\xffb"`, `"a\xffb"`},
		{"all at once", `%$"\ '`, `"%%$\"\\ '"`, `"%%$$\"\\ '"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := quoteWord(tc.in); got != tc.word {
				t.Errorf("quoteWord(%q) = %s, want %s", tc.in, got, tc.word)
			}
			if got := quoteExecArg(tc.in); got != tc.arg {
				t.Errorf("quoteExecArg(%q) = %s, want %s", tc.in, got, tc.arg)
			}
		})
	}
}

// TestEscapePath compares escapePath with systemd's own systemd-escape
// --path, which must be installed (it comes with systemd-analyze).
func TestEscapePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/", "-"},
		{"/home/alice/mesh", "home-alice-mesh"},
		{"/home/alice/my-mesh", `home-alice-my\x2dmesh`},
		{"/home/alice/.mesh", "home-alice-.mesh"},
		{"/.mesh", `\x2emesh`},
		{"/srv/my mesh 100%", `srv-my\x20mesh\x20100\x25`},
		{`/a\b/c:d_e`, `a\x5cb-c:d_e`},
		{"/caf\u00e9", `caf\xc3\xa9`},
	}
	tool := requireTool(t, "systemd-escape")
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := escapePath(tc.in); got != tc.want {
				t.Errorf("escapePath(%q) = %s, want %s", tc.in, got, tc.want)
			}
			out, err := exec.Command(tool, "--path", tc.in).Output()
			if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
				t.Errorf("systemd-escape --path %q = %s (%v), want %s", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestUnitVerify writes units whose executable path, mount point and
// flags hold what needs quoting, through the install command itself, and
// has systemd-analyze verify load them: it reports a bad quote, an
// unknown specifier, and an executable path that does not resolve to an
// executable file.
func TestUnitVerify(t *testing.T) {
	analyze := requireTool(t, "systemd-analyze")
	tests := []struct{ name, binDir, mnt, nodeName string }{
		{"plain", "bin", "mesh", "alice"},
		{"quoting everywhere", "my bin 100%z $HOME", `my mesh 100%z $HOME "q" 'x' \b`, "a b$c%z\"e"},
		{"dashes and dots", ".bin-x", ".my-mesh", ";"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
			t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
			t.Setenv("MESHFS_MAX_FILE_SIZE", "1 GiB")
			mnt := filepath.Join(dir, tc.mnt)
			if err := os.Mkdir(mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			args := []string{"meshfs", "service", "install", mnt, "--name", tc.nodeName, "--no-start"}
			if code := run(args, strings.NewReader(""), &out, &errOut); code != 0 {
				t.Fatalf("meshfs service install: exit %d: %s", code, errOut.String())
			}
			_, path, err := unitPath(mnt)
			if err != nil {
				t.Fatal(err)
			}
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{quoteExecArg(mnt), quoteExecArg("--name=" + tc.nodeName), `"--max-file-size=1 GiB"`} {
				if !strings.Contains(string(text), " "+want) && !strings.Contains(string(text), "="+want) {
					t.Errorf("unit lacks %s:\n%s", want, text)
				}
			}
			// The unit install wrote names the test binary; the same
			// unit naming an executable at a path that needs quoting must
			// load too.
			bin := writeExecutable(t, filepath.Join(dir, tc.binDir, "meshfs"))
			spec := unitSpec{mountpoint: mnt, binary: bin, args: []string{"--name=" + tc.nodeName}}
			other := filepath.Join(dir, "other.service")
			if err := os.WriteFile(other, []byte(spec.render()), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, unit := range []string{path, other} {
				out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
				if err != nil || len(out) > 0 {
					t.Errorf("systemd-analyze verify %s: %v\n%s\nunit:\n%s", unit, err, out, readFile(t, unit))
				}
			}
		})
	}
}

// requireTool finds a systemd tool the unit tests need, and fails (never
// skips) without it: CI has systemd, and a skipped check proves nothing.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed to check systemd units (Debian: apt-get install systemd): %v", name, err)
	}
	return path
}

// writeExecutable makes a small executable file at path, so an ExecStart
// can name one in a folder that needs quoting.
func writeExecutable(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
