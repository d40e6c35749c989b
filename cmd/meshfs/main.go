// Command meshfs mounts a folder shared by a small, private mesh of peers:
// files copied into outbox/ reach every member's inbox/, lines written to
// chat reach everyone, and peers shows who is there.
//
// main alone reads flags and the environment, handles signals, builds the
// root logger and wires mesh -> sync -> fs.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code. Errors
// end as one line on stderr; a stack trace is never what a user sees.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp(stdin, stdout, stderr)
	err := app.RunContext(ctx, flagsFirst(app, args))
	if err == nil {
		return 0
	}
	var exit cli.ExitCoder
	if errors.As(err, &exit) {
		if msg := exit.Error(); msg != "" {
			fmt.Fprintln(stderr, "meshfs:", msg)
		}
		return exit.ExitCode()
	}
	fmt.Fprintln(stderr, "meshfs:", err)
	return 1
}
