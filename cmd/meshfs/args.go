package main

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// flagsFirst moves a subcommand's flags in front of its positional
// arguments. urfave/cli v2 stops parsing flags at the first positional
// argument (Go's flag package semantics), but meshfs documents
// "meshfs mount MOUNTPOINT --listen 8001", as sshfs and mount(8) do.
// Everything after a "--" stays positional. For a command with
// subcommands (meshfs service install), the subcommand's flags move.
func flagsFirst(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	cmd := app.Command(args[1])
	if cmd == nil {
		return args
	}
	head, rest := args[:2], args[2:]
	if len(rest) > 0 && len(cmd.Subcommands) > 0 {
		if sub := cmd.Command(rest[0]); sub != nil {
			cmd, head, rest = sub, args[:3], args[3:]
		}
	}
	takesValue := valueFlags(cmd)
	var flags, positional []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			positional = append(positional, rest[i+1:]...)
			i = len(rest)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(rest) {
				i++
				flags = append(flags, rest[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	out := append(slices.Clone(head), flags...)
	if len(positional) > 0 {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out
}

// valueFlags returns the names (and aliases) of cmd's flags that take a
// value: every flag but the boolean ones.
func valueFlags(cmd *cli.Command) map[string]bool {
	m := make(map[string]bool)
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, name := range f.Names() {
			m[name] = !isBool
		}
	}
	return m
}
