//go:build unix

package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// manPage returns 'meshfs man' from the real app.
func manPage(t *testing.T) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run([]string{"meshfs", "man"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("meshfs man: exit %d: %s", code, errOut.String())
	}
	return out.String()
}

// TestManGroff renders the page with groff's man macros and every warning
// on: none may appear, and the text shows every command, flag and
// environment variable of the app, and the description's inbox/<sender>/
// that a Markdown step would swallow.
func TestManGroff(t *testing.T) {
	if _, err := exec.LookPath("groff"); err != nil {
		t.Skip("no groff (Debian: groff-base, which .ci/run installs)")
	}
	page := manPage(t)
	lint := exec.Command("groff", "-man", "-ww", "-z", "-Tutf8")
	lint.Stdin = strings.NewReader(page)
	if out, err := lint.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("groff -man -ww -z: %v\n%s", err, out)
	}
	render := exec.Command("groff", "-man", "-Tutf8", "-P-cbou", "-rLL=200n")
	render.Stdin = strings.NewReader(page)
	text, err := render.Output()
	if err != nil {
		t.Fatalf("groff -man -Tutf8: %v", err)
	}
	// groff prints - in \- as U+2212 under -Tutf8; a reader copies ASCII.
	for _, want := range append(manWants(t), "inbox/<sender>/", "SEE ALSO", "ENVIRONMENT") {
		if !strings.Contains(string(text), strings.ReplaceAll(want, "-", "\u2212")) &&
			!strings.Contains(string(text), want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
}

// TestManStructure checks the roff source, groff or not: section 1 and
// the sections a man page has, and a subsection for every command.
func TestManStructure(t *testing.T) {
	page := manPage(t)
	for _, want := range []string{".TH MESHFS 1 ", "\n.SH NAME\nmeshfs \\- ", "\n.SH SYNOPSIS\n",
		"\n.SH DESCRIPTION\n", "\n.SH COMMANDS\n", "\n.SH ENVIRONMENT\n", "\n.SH SEE ALSO\n"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, cmd := range visibleCommands(t) {
		if want := "\n.SS \"meshfs " + cmd.Name + "\"\n"; !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, "'") {
			t.Errorf("line %q would be read as a request", line)
		}
	}
}

// manWants lists what the page must show: each command, each flag as
// typed, and each flag's environment variables.
func manWants(t *testing.T) []string {
	t.Helper()
	var wants []string
	for _, cmd := range visibleCommands(t) {
		wants = append(wants, "meshfs "+cmd.Name)
		for _, f := range ownFlags(cmd) {
			wants = append(wants, dashed(f.Names()[0]))
			if env, ok := f.(interface{ GetEnvVars() []string }); ok {
				wants = append(wants, env.GetEnvVars()...)
			}
		}
	}
	return wants
}
