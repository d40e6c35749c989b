package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // MESHFS_PPROF: profiling for `make bench` investigations
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	meshsync "github.com/meshfs/meshfs/sync"
	"github.com/meshfs/meshfs/ui"
	"github.com/urfave/cli/v2"
)

// mountOptions are the mount command's flags after validation.
type mountOptions struct {
	mountpoint string
	stateDir   string
	listen     string
	join       []string
	invite     string
	name       string
	noFUSE     bool
	// anchor marks this member as one with a stable public address
	// (--anchor): joiners may join through it (mesh.Config.Anchor).
	anchor bool
	// portMapping asks the router to forward the listen port (--port-mapping).
	portMapping bool
	// fullMeshUpTo and activeView size the partial mesh (overlayFlags).
	fullMeshUpTo, activeView int
	sync                     meshsync.Config // sync's defaults with the limit flags applied
	logFormat                string          // "text" or "json"
	logLevel                 slog.Level
	uiAddr                   string // --ui: the page's HOST:PORT, "" for no page
	uiRemote                 bool   // --ui-allow-remote
}

// defaultMemoryLimit keeps the heap small while large files move: transfers
// stream block by block, so a tight soft limit costs little CPU. GOMEMLIMIT
// in the environment overrides it.
const defaultMemoryLimit = 96 << 20

func mountAction(c *cli.Context) error {
	opts, err := parseMountOptions(c)
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	log := newLogger(c.App.ErrWriter, opts.logFormat, opts.logLevel)
	slog.SetDefault(log)
	if addr := os.Getenv("MESHFS_PPROF"); addr != "" {
		stop, err := servePprof(addr)
		if err != nil {
			return err
		}
		defer stop()
	}
	d, err := startDaemon(c.Context, opts, log)
	if err != nil {
		return err
	}
	printBanner(c.App.Writer, d)
	return d.run(c.Context)
}

// servePprof serves net/http/pprof (MESHFS_PPROF, for profiling a running
// node) on a loopback address only: it is unauthenticated. stop closes it.
func servePprof(addr string) (stop func(), err error) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("MESHFS_PPROF=%s: give a loopback address such as 127.0.0.1:6060", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("MESHFS_PPROF: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	return func() { srv.Close(); <-done }, nil
}

func parseMountOptions(c *cli.Context) (mountOptions, error) {
	if c.NArg() != 1 {
		return mountOptions{}, cli.Exit("usage: meshfs mount MOUNTPOINT [flags] (see meshfs mount --help)", 2)
	}
	mnt, err := mountpointArg(c.Args().First())
	if err != nil {
		return mountOptions{}, err
	}
	opts := mountOptions{
		mountpoint: mnt,
		join:       c.StringSlice("join"),
		name:       c.String("name"),
		noFUSE:     c.Bool("no-fuse"),
		anchor:     c.Bool("anchor"),
	}
	// Flags that only need parsing come first: a bad one stops the mount
	// before the state folder or the invite on stdin is touched.
	if opts.sync, err = syncConfig(c); err != nil {
		return opts, err
	}
	if opts.logFormat, opts.logLevel, err = logSettings(c); err != nil {
		return opts, err
	}
	if opts.listen, err = listenAddr(c.String("listen")); err != nil {
		return opts, err
	}
	if opts.portMapping, err = portMappingOn(c); err != nil {
		return opts, err
	}
	if opts.fullMeshUpTo, opts.activeView, err = overlaySize(c); err != nil {
		return opts, err
	}
	if opts.uiAddr, opts.uiRemote, err = uiFlags(c); err != nil {
		return opts, err
	}
	if opts.stateDir, err = stateDirFor(c.String("state"), mnt); err != nil {
		return opts, err
	}
	if opts.invite, err = inviteToken(c); err != nil {
		return opts, err
	}
	if opts.name == "" {
		opts.name, _ = os.Hostname()
	}
	return opts, nil
}

// listenAddr accepts PORT, :PORT or HOST:PORT.
func listenAddr(s string) (string, error) {
	if !strings.Contains(s, ":") {
		s = ":" + s
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return "", fmt.Errorf("--listen %q: want PORT, :PORT or HOST:PORT", s)
	}
	return s, nil
}

// uiFlags checks --ui and --ui-allow-remote before anything starts.
func uiFlags(c *cli.Context) (string, bool, error) {
	addr, remote := c.String("ui"), c.Bool("ui-allow-remote")
	if addr == "" {
		return "", false, nil
	}
	err := ui.CheckAddr(addr, remote)
	switch {
	case errors.Is(err, ui.ErrNotLoopback):
		return "", false, cli.Exit(fmt.Sprintf("--ui %s is not a loopback address: other machines could reach the page; "+
			"use 127.0.0.1:PORT, or add --ui-allow-remote if that is what you want", addr), 2)
	case err != nil:
		return "", false, cli.Exit(fmt.Sprintf("--ui %s: want 127.0.0.1:PORT (an IP address or localhost, and a port)", addr), 2)
	}
	return addr, remote, nil
}

func stateDirFor(flag, mnt string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	return defaultStateDir(mnt)
}

// inviteToken returns the --invite value, reading it from stdin for "-".
// A token on the command line is visible to every local user through ps,
// so that case prints a warning (the environment variable is private).
func inviteToken(c *cli.Context) (string, error) {
	tok := c.String("invite")
	switch {
	case tok == "-":
		line, err := bufio.NewReader(c.App.Reader).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read invite token from stdin: %w", err)
		}
		return strings.TrimSpace(line), nil
	case tok != "" && os.Getenv("MESHFS_INVITE") == "":
		fmt.Fprintln(c.App.ErrWriter, "meshfs: warning: an invite token on the command line is visible to other local users; prefer MESHFS_INVITE or --invite -")
	}
	return strings.TrimSpace(tok), nil
}

// lockState takes an exclusive lock on the state folder so two nodes never
// share one identity and one transfer database. The lock dies with the process.
func lockState(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state folder: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("state folder %s is in use by another meshfs node", dir)
	}
	return f, nil
}

// prepareMountpoint clears a mount left by a crashed node, then requires an
// existing folder.
func prepareMountpoint(mnt string, clearStale func(string) error) error {
	if err := clearStale(mnt); err != nil {
		return fmt.Errorf("mount point %s: clear a stale mount: %w", mnt, err)
	}
	fi, err := os.Stat(mnt)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("mount point %s does not exist (create it with mkdir)", mnt)
	case err != nil:
		return fmt.Errorf("mount point %s: %w", mnt, err)
	case !fi.IsDir():
		return fmt.Errorf("mount point %s is not a folder", mnt)
	}
	return nil
}

func printBanner(w io.Writer, d *daemon) {
	mode := "FUSE"
	if d.opts.noFUSE {
		mode = "plain folder"
	}
	fmt.Fprintf(w, "meshfs: %s is ready (%s)\n", d.opts.mountpoint, mode)
	fmt.Fprintf(w, "  node    %s (%s)\n", d.node.Name(), d.node.ID().Short())
	fmt.Fprintf(w, "  listen  %s\n", d.node.Addr())
	fmt.Fprintf(w, "  mesh    %s\n", d.node.MeshID())
	fmt.Fprintf(w, "  state   %s\n", d.opts.stateDir)
	if d.node.Created() {
		fmt.Fprintf(w, "This node created the mesh and is its admin. Invite others with:\n  meshfs invite %s\n", d.opts.mountpoint)
	}
}
