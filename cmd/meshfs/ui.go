package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/urfave/cli/v2"
)

// openTimeout bounds xdg-open, which hands the address to the browser and
// returns.
const openTimeout = 10 * time.Second

// uiAction prints the page's address, token included, and opens it when a
// graphical session and xdg-open are there; otherwise the address is for
// the user to open (or to carry through an SSH tunnel).
func uiAction(c *cli.Context) error {
	mnt, err := oneMountpoint(c, 1, "MOUNTPOINT")
	if err != nil {
		return err
	}
	var res uiResult
	if err := callControl(c.Context, mnt, controlRequest{Op: "ui"}, &res); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, res.URL)
	if opener := browserOpener(os.Getenv, exec.LookPath); opener != "" {
		openURL(c.Context, c.App.ErrWriter, opener, res.URL)
	}
	return nil
}

// browserOpener returns xdg-open's path when a browser can be opened: a
// graphical session (DISPLAY or WAYLAND_DISPLAY) and xdg-open on PATH.
func browserOpener(getenv func(string) string, lookPath func(string) (string, error)) string {
	if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		return ""
	}
	path, err := lookPath("xdg-open")
	if err != nil {
		return ""
	}
	return path
}

// openURL runs the opener; a failure only says so, the address is printed.
func openURL(ctx context.Context, errw io.Writer, opener, url string) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, opener, url).CombinedOutput(); err != nil {
		fmt.Fprintf(errw, "meshfs: could not open a browser (%v); open the address above yourself\n%s", err, out)
	}
}
