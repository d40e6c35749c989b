package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// 'meshfs doctor' checks what a person's machine needs for meshfs and, given
// a mount point, the node serving it. Each check gives one finding: ok,
// warn (works, but worth fixing) or fail (something does not work), with
// what to do for the last two. The local checks live in doctor_linux.go and
// doctor_other.go, the node's in doctor_node.go.

// Finding statuses, in increasing order of trouble.
const (
	statusOK   = "ok"
	statusWarn = "warn"
	statusFail = "fail"
)

// finding is one line of the doctor's report; --json prints a list of them.
type finding struct {
	Check  string `json:"check"`
	Status string `json:"status"` // ok, warn or fail
	Detail string `json:"detail"`
	Fix    string `json:"fix"` // what to do; empty for ok
}

func passed(check, detail string) finding { return finding{check, statusOK, detail, ""} }

func warned(check, detail, fix string) finding { return finding{check, statusWarn, detail, fix} }

func failed(check, detail, fix string) finding { return finding{check, statusFail, detail, fix} }

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:      "doctor",
		Usage:     "check this machine (and the node serving MOUNTPOINT) and say what to fix",
		ArgsUsage: "[MOUNTPOINT]",
		Description: "Without MOUNTPOINT, checks FUSE and the watch limits. With it, also checks that a\n" +
			"node serves it, its state permissions, free space, listen port, members and clocks.\n" +
			"Exits 1 if any check failed; warnings alone exit 0.",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the checks as a JSON array"}},
		Action: doctorAction,
	}
}

func doctorAction(c *cli.Context) error {
	if c.NArg() > 1 {
		return cli.Exit("usage: meshfs doctor [MOUNTPOINT] [--json]", 2)
	}
	found := localChecks()
	if c.NArg() == 1 {
		mnt, err := mountpointArg(c.Args().First())
		if err != nil {
			return err
		}
		found = append(found, nodeChecks(c.Context, mnt)...)
	}
	if err := printFindings(c.App.Writer, found, c.Bool("json")); err != nil {
		return err
	}
	if n := countFailed(found); n > 0 {
		return cli.Exit(fmt.Sprintf("doctor: %d check(s) failed", n), 1)
	}
	return nil
}

func countFailed(found []finding) int {
	n := 0
	for _, f := range found {
		if f.Status == statusFail {
			n++
		}
	}
	return n
}

// printFindings writes one line per finding, with its fix on the next line
// when there is one, or the JSON array.
func printFindings(w io.Writer, found []finding, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if found == nil {
			found = []finding{}
		}
		return enc.Encode(found)
	}
	var b strings.Builder
	for _, f := range found {
		fmt.Fprintf(&b, "%-4s  %s: %s\n", f.Status, f.Check, f.Detail)
		if f.Fix != "" {
			fmt.Fprintf(&b, "      fix: %s\n", f.Fix)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
