package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// The completion scripts are generated from the running cli.App, so a
// command or flag added anywhere shows up in them with no second list to
// keep in step. urfave/cli's own bash and zsh scripts are not used: they
// run the binary on every TAB with 'eval' of the typed line, need a file
// name to guess the program from, and fall back to any file where meshfs
// wants a folder. Its fish generator offers files after every command and
// keeps the backquotes of placeholders, so fish is generated here too.

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "The script is complete by itself. To load it for every new shell, as a user:\n" +
			"  bash    meshfs completion bash > ~/.local/share/bash-completion/completions/meshfs\n" +
			"  zsh     meshfs completion zsh > ~/.zfunc/_meshfs   (with ~/.zfunc in $fpath)\n" +
			"  fish    meshfs completion fish > ~/.config/fish/completions/meshfs.fish\n" +
			"'make install' puts all three where the shells' packages look.",
		Action: completionAction,
	}
}

// completionWriters maps a shell name to its script generator.
var completionWriters = map[string]func(io.Writer, *compCmd){
	"bash": writeBash,
	"zsh":  writeZsh,
	"fish": writeFish,
}

func completionAction(c *cli.Context) error {
	shell := c.Args().First()
	write, ok := completionWriters[shell]
	if c.NArg() != 1 || !ok {
		return cli.Exit("usage: meshfs completion bash|zsh|fish", 2)
	}
	write(c.App.Writer, compTree(c.App))
	return nil
}

// compCmd is one command as the completion scripts see it.
type compCmd struct {
	path  string     // app name and canonical command names: "meshfs mount"
	names []string   // what may be typed for it: name, then aliases
	usage string     // one line
	flags []compFlag // including --help (and --version for the app)
	args  []compArg  // positional arguments, from ArgsUsage
	subs  []*compCmd // visible subcommands
}

// compFlag is one flag of a command.
type compFlag struct {
	names  []string // without dashes; the first is the flag's name
	value  string   // placeholder of its value, "" when it takes none
	usage  string   // with the placeholder's backquotes removed
	repeat bool     // may be given more than once
}

// argKind says how a value is completed.
type argKind int

const (
	argNone  argKind = iota // free text: nothing to offer
	argDir                  // a folder
	argFile                 // any file
	argWords                // one of a fixed list of words
)

// compArg is a positional argument or a flag value.
type compArg struct {
	name  string // as in the usage: MOUNTPOINT, DIR, bash|zsh|fish
	kind  argKind
	words []string // for argWords
}

// compTree walks the app's visible commands and flags.
func compTree(app *cli.App) *compCmd {
	root := &compCmd{path: app.Name, names: []string{app.Name}, usage: app.Usage}
	root.flags = compFlags(app.VisibleFlags(), !app.HideHelp, !app.HideVersion)
	root.subs = compSubs(root.path, app.Commands)
	return root
}

func compSubs(parent string, cmds []*cli.Command) []*compCmd {
	var subs []*compCmd
	for _, cmd := range visible(cmds) {
		c := &compCmd{
			path:  parent + " " + cmd.Name,
			names: cmd.Names(),
			usage: cmd.Usage,
			flags: compFlags(cmd.VisibleFlags(), !cmd.HideHelp, false),
			args:  compArgs(cmd.ArgsUsage),
		}
		c.subs = compSubs(c.path, cmd.Subcommands)
		subs = append(subs, c)
	}
	return subs
}

// visible drops hidden commands and the help command urfave adds to a
// command's subcommands once it runs.
func visible(cmds []*cli.Command) []*cli.Command {
	var out []*cli.Command
	for _, c := range cmds {
		if !c.Hidden && c.Name != cli.HelpFlag.Names()[0] {
			out = append(out, c)
		}
	}
	return out
}

// compFlags converts flags. urfave adds --help and --version to the
// definitions only once a command runs, so they are dropped here and added
// back as the help settings say, the same whichever command is running.
func compFlags(flags []cli.Flag, help, version bool) []compFlag {
	var out []compFlag
	for _, f := range flags {
		if name := f.Names()[0]; name == cli.HelpFlag.Names()[0] || name == cli.VersionFlag.Names()[0] {
			continue
		}
		out = append(out, compFlagOf(f))
	}
	if help {
		out = append(out, compFlagOf(cli.HelpFlag))
	}
	if version {
		out = append(out, compFlagOf(cli.VersionFlag))
	}
	return out
}

func compFlagOf(f cli.Flag) compFlag {
	cf := compFlag{names: f.Names()}
	doc, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return cf
	}
	cf.value, cf.usage = placeholder(doc.GetUsage())
	if !doc.TakesValue() {
		cf.value = ""
	} else if cf.value == "" {
		cf.value = "VALUE"
	}
	if s, ok := f.(cli.DocGenerationSliceFlag); ok {
		cf.repeat = s.IsSliceFlag()
	}
	return cf
}

// placeholder splits a usage text as urfave's help does: the first
// `QUOTED` word names the value, and the text keeps it without quotes.
func placeholder(usage string) (name, text string) {
	before, rest, ok := strings.Cut(usage, "`")
	if !ok {
		return "", usage
	}
	name, after, ok := strings.Cut(rest, "`")
	if !ok {
		return "", usage
	}
	return name, before + name + after
}

// compArgs reads the positional arguments from a command's ArgsUsage,
// such as "MOUNTPOINT NAME|ID" or "bash|zsh|fish".
func compArgs(argsUsage string) []compArg {
	var args []compArg
	for _, w := range strings.Fields(argsUsage) {
		w = strings.Trim(w, "[].")
		if w != "" {
			args = append(args, argOf(w))
		}
	}
	return args
}

// argOf tells how to complete a value from its placeholder: names in
// lower case are the words to type, upper case ones stand for a value;
// of those only folders and files can be offered.
func argOf(name string) compArg {
	a := compArg{name: name}
	switch {
	case name == "MOUNTPOINT" || name == "DIR" || strings.HasSuffix(name, "_DIR"):
		a.kind = argDir
	case name == "FILE" || name == "PATH":
		a.kind = argFile
	case name == strings.ToLower(name):
		a.kind, a.words = argWords, strings.Split(name, "|")
	}
	return a
}

// each calls fn for c and every command below it, parents first.
func (c *compCmd) each(fn func(*compCmd)) {
	fn(c)
	for _, s := range c.subs {
		s.each(fn)
	}
}

// subNames lists what may be typed for c's subcommands.
func (c *compCmd) subNames() []string {
	var names []string
	for _, s := range c.subs {
		names = append(names, s.names...)
	}
	return names
}

// dashed returns a flag name as typed: -w or --watch.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// longNames returns the names of f longer than one letter, dashed.
func (f compFlag) longNames() []string {
	var out []string
	for _, n := range f.names {
		if len(n) > 1 {
			out = append(out, dashed(n))
		}
	}
	return out
}

// valueKind tells how to complete the flag's value.
func (f compFlag) valueKind() compArg {
	a := argOf(f.value)
	if a.kind == argWords { // "value" and the like are no list of words
		a.kind = argNone
	}
	return a
}

// shQuote quotes s for bash and zsh: in single quotes, with each single
// quote closed, escaped and reopened.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fprintf writes to a script being generated. Completion output goes to
// the app's Writer, where a failed write shows as a truncated script the
// shell rejects; there is no one to tell earlier.
func fprintf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, format, args...)
}
