//go:build unix

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// script returns meshfs's completion script for shell, from the real app.
func script(t *testing.T, shell string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run([]string{"meshfs", "completion", shell}, nil, &out, &errOut); code != 0 {
		t.Fatalf("meshfs completion %s: exit %d: %s", shell, code, errOut.String())
	}
	return out.String()
}

// bashComplete sources the bash script in dir and completes line as if
// TAB were pressed at its end, returning COMPREPLY. With bashCompletion,
// bash-completion's own functions are loaded first, as on a Debian desktop.
func bashComplete(t *testing.T, scriptFile, dir, line, bashCompletion string) []string {
	t.Helper()
	words := strings.Split(line, " ")
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, shQuote(w))
	}
	prog := "source " + shQuote(scriptFile) + "\n" +
		"COMP_WORDS=(" + strings.Join(quoted, " ") + ")\n" +
		"COMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n" +
		"COMP_LINE=" + shQuote(line) + " COMP_POINT=" + strconv.Itoa(len(line)) + "\n" +
		"_meshfs\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	if bashCompletion != "" {
		prog = "source " + shQuote(bashCompletion) + "\n" + prog
	}
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", prog)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("complete %q: %v: %s", line, err, stderr.String())
	}
	got := strings.Fields(string(out))
	slices.Sort(got)
	return got
}

// TestBashCompletion runs the generated script in bash: the script parses,
// and TAB after each line offers what a user would type next.
func TestBashCompletion(t *testing.T) {
	file, dir := bashScript(t)
	if out, err := exec.Command("bash", "-n", file).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	work := filepath.Join(dir, "work")
	for _, d := range []string{"work/mnt", "work/state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(work, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line string
		want []string
	}{
		{"meshfs mo", []string{"mount"}},
		{"meshfs mount --lis", []string{"--listen"}},
		{"meshfs u", []string{"ui", "umount", "unmount"}},
		{"meshfs umount --h", []string{"--help"}},
		{"meshfs status --w", []string{"--watch"}},
		{"meshfs --v", []string{"--version"}},
		{"meshfs mount ", []string{"mnt", "state"}},                       // MOUNTPOINT: folders, not files
		{"meshfs mount m", []string{"mnt"}},                               //
		{"meshfs mount --state ", []string{"mnt", "state"}},               // a DIR value
		{"meshfs mount --state=s", []string{"--state=state"}},             // the same, in one word
		{"meshfs mount --listen ", nil},                                   // an ADDR: nothing to offer
		{"meshfs mount --listen 8000 m", []string{"mnt"}},                 // the value is no argument
		{"meshfs mount --no-fuse m", []string{"mnt"}},                     // a boolean takes no value
		{"meshfs mount mnt ", nil},                                        // one argument only
		{"meshfs mount mnt --debug --n", []string{"--name", "--no-fuse"}}, // flags after the argument
		{"meshfs remove mnt ", nil},                                       // NAME|ID: nothing to offer
		{"meshfs completion ", []string{"bash", "fish", "zsh"}},           //
		{"meshfs completion z", []string{"zsh"}},                          //
		{"meshfs mount -- --l", nil},                                      // after --, no flags
	}
	variants := map[string]string{"plain bash": ""}
	if bc := "/usr/share/bash-completion/bash_completion"; fileExists(bc) {
		variants["with bash-completion"] = bc
	}
	for name, bc := range variants {
		t.Run(name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.line, func(t *testing.T) {
					if got := bashComplete(t, file, work, tc.line, bc); !slices.Equal(got, tc.want) {
						t.Errorf("complete %q = %q, want %q", tc.line, got, tc.want)
					}
				})
			}
		})
	}
}

// TestBashCompletionEveryFlag completes every command's name and each of
// its long flags from its whole name, so a command or flag added to the
// app is checked without touching this test.
func TestBashCompletionEveryFlag(t *testing.T) {
	file, dir := bashScript(t)
	for _, cmd := range visibleCommands(t) {
		t.Run(cmd.Name, func(t *testing.T) {
			if got := bashComplete(t, file, dir, "meshfs "+cmd.Name, ""); !slices.Contains(got, cmd.Name) {
				t.Errorf("complete %q = %q, want it to hold %q", "meshfs "+cmd.Name, got, cmd.Name)
			}
			for _, name := range longFlags(cmd) {
				// The whole name completes to itself, and to the longer
				// flags it begins (--max-inbound, --max-inbound-per-peer).
				line := "meshfs " + cmd.Name + " " + name
				got := bashComplete(t, file, dir, line, "")
				if !slices.Contains(got, name) || slices.ContainsFunc(got, func(g string) bool { return !strings.HasPrefix(g, name) }) {
					t.Errorf("complete %q = %q, want %s and only flags it begins", line, got, name)
				}
			}
		})
	}
}

// TestZshFishCompletion checks that the zsh and fish scripts name every
// command and flag, and that the shells parse them where installed.
func TestZshFishCompletion(t *testing.T) {
	tests := []struct {
		shell   string
		check   []string                      // the shell's syntax check, if installed
		command func(cmd *cli.Command) string // how the script offers a command
		flag    func(cmd, flag string) string // and a flag
	}{
		{"zsh", []string{"zsh", "-n"},
			func(c *cli.Command) string { return "\n_meshfs_" + c.Name + "() {\n" },
			func(c, f string) string { return "--" + f },
		},
		{"fish", []string{"fish", "--no-execute"},
			func(c *cli.Command) string { return "\"__meshfs_at 'meshfs' 0\" -a '" + c.Name + "'" },
			func(c, f string) string { return "\"__meshfs_at 'meshfs " + c + "'\" -l " + f },
		},
	}
	for _, tc := range tests {
		t.Run(tc.shell, func(t *testing.T) {
			text := script(t, tc.shell)
			for _, cmd := range visibleCommands(t) {
				if want := tc.command(cmd); !strings.Contains(text, want) {
					t.Errorf("%s script lacks %q", tc.shell, want)
				}
				for _, name := range longFlags(cmd) {
					if want := tc.flag(cmd.Name, strings.TrimPrefix(name, "--")); !strings.Contains(text, want) {
						t.Errorf("%s script lacks %q", tc.shell, want)
					}
				}
			}
			if _, err := exec.LookPath(tc.check[0]); err != nil {
				t.Logf("no %s here: syntax not checked", tc.check[0])
				return
			}
			file := filepath.Join(t.TempDir(), "meshfs."+tc.shell)
			if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(tc.check[0], append(tc.check[1:], file)...).CombinedOutput(); err != nil {
				t.Errorf("%s %s: %v\n%s", strings.Join(tc.check, " "), file, err, out)
			}
		})
	}
}

// visibleCommands returns the app's commands as a user sees them.
func visibleCommands(t *testing.T) []*cli.Command {
	t.Helper()
	cmds := newApp(nil, nil, nil).VisibleCommands()
	if len(cmds) == 0 {
		t.Fatal("the app has no commands")
	}
	return cmds
}

// longFlags returns cmd's flags as typed, --name, plus --help.
func longFlags(cmd *cli.Command) []string {
	names := []string{"--help"}
	for _, f := range cmd.VisibleFlags() {
		for _, n := range f.Names() {
			if len(n) > 1 && n != "help" {
				names = append(names, "--"+n)
			}
		}
	}
	return names
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// bashScript writes the bash completion script into a temporary folder and
// returns its path and the folder. bash is part of every system the suite
// runs on; a machine without it fails here rather than skipping.
func bashScript(t *testing.T) (file, dir string) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bash is needed: %v", err)
	}
	dir = t.TempDir()
	file = filepath.Join(dir, "meshfs.bash")
	if err := os.WriteFile(file, []byte(script(t, "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, dir
}
