package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"
)

// 'meshfs service install|uninstall|status': one mount as a systemd user
// service. The commands talk to the user's systemd through systemctl, and
// when there is none (no login session, as on CI) say what to run instead.

func serviceInstall(c *cli.Context) error {
	mnt, err := serviceMountpoint(c, "install MOUNTPOINT [mount flags] [--no-start]")
	if err != nil {
		return err
	}
	if c.String("invite") != "" {
		return cli.Exit("an invite token is a secret used once, so it is not written into a unit: join first by\n"+
			"running 'meshfs mount "+mnt+" --join HOST:PORT' once by hand with the token (MESHFS_INVITE or\n"+
			"--invite -), stop it with Ctrl-C once it has joined, then install without the token", 2)
	}
	if err := prepareMountpoint(mnt, func(string) error { return nil }); err != nil {
		return err
	}
	spec, err := newUnitSpec(c, mnt)
	if err != nil {
		return err
	}
	name, path, err := unitPath(mnt)
	if err != nil {
		return err
	}
	replaced, err := replaceableUnit(path)
	if err != nil {
		return err
	}
	if err := writeUnit(path, spec.render()); err != nil {
		return fmt.Errorf("write unit %s: %w", path, err)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "Wrote %s\n  ExecStart=%s\n", path, spec.execStart())
	if err := startUnit(c, name, replaced); err != nil {
		return err
	}
	fmt.Fprintf(w, "Follow its log with:\n  journalctl --user -u %s -f\n", name)
	return nil
}

// replaceableUnit reports whether a unit meshfs wrote is already at path,
// and refuses a file someone else wrote.
func replaceableUnit(path string) (bool, error) {
	err := checkOurUnit(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// startUnit enables and starts the unit, or says why it did not and what
// to run. replaced means an earlier version may be running: it is
// restarted so the new flags apply.
func startUnit(c *cli.Context, name string, replaced bool) error {
	cmds := [][]string{{"daemon-reload"}}
	if replaced {
		cmds = append(cmds, []string{"try-restart", name})
	}
	cmds = append(cmds, []string{"enable", "--now", name})
	w := c.App.Writer
	why := "--no-start"
	if !c.Bool("no-start") {
		why = ""
		if err := userManager(); err != nil {
			why = err.Error()
		}
	}
	if why != "" {
		fmt.Fprintf(w, "Not started (%s). To start it now and at every login, run as this user in a login session:\n", why)
		printSystemctl(w, cmds)
		return nil
	}
	for _, args := range cmds {
		if err := systemctl(args...); err != nil {
			return fmt.Errorf("%w; the unit file stays in place", err)
		}
	}
	fmt.Fprintf(w, "Started %s; it starts again at every login of this user. Ran:\n", name)
	printSystemctl(w, cmds)
	return nil
}

func serviceUninstall(c *cli.Context) error {
	mnt, err := serviceMountpoint(c, "uninstall MOUNTPOINT")
	if err != nil {
		return err
	}
	name, path, err := unitPath(mnt)
	if err != nil {
		return err
	}
	if err := checkOurUnit(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no meshfs unit for %s: %s does not exist", mnt, path)
	} else if err != nil {
		return err
	}
	w := c.App.Writer
	if err := userManager(); err != nil {
		fmt.Fprintf(w, "Nothing stopped (%s).\n", err)
	} else {
		// Reload first: a unit written with --no-start is not loaded yet,
		// and stop would fail on it. Removing the file of a unit that is
		// still running would orphan it, so a failure here keeps the file.
		cmds := [][]string{{"daemon-reload"}, {"disable", "--now", name}}
		for _, args := range cmds {
			if err := systemctl(args...); err != nil {
				return fmt.Errorf("%w; %s is left in place", err, path)
			}
		}
		fmt.Fprintf(w, "Stopped and disabled %s.\n", name)
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	fmt.Fprintf(w, "Removed %s\n", path)
	return nil
}

func serviceStatus(c *cli.Context) error {
	mnt, err := serviceMountpoint(c, "status MOUNTPOINT")
	if err != nil {
		return err
	}
	name, path, err := unitPath(mnt)
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "unit     %s\n", name)
	switch err := checkOurUnit(path); {
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(w, "file     %s: not installed\n", path)
	case err != nil:
		fmt.Fprintf(w, "file     %s: %v\n", path, errors.Unwrap(err))
	default:
		fmt.Fprintf(w, "file     %s\n", path)
	}
	if err := userManager(); err != nil {
		fmt.Fprintf(w, "active   unknown (%s)\n", err)
	} else {
		fmt.Fprintf(w, "active   %s\n", systemctlState("is-active", name))
		fmt.Fprintf(w, "enabled  %s\n", systemctlState("is-enabled", name))
	}
	fmt.Fprintf(w, "log      journalctl --user -u %s -f\n", name)
	return nil
}

// serviceMountpoint returns the absolute MOUNTPOINT, the one argument of
// every service subcommand.
func serviceMountpoint(c *cli.Context, usage string) (string, error) {
	if c.NArg() != 1 {
		return "", cli.Exit("usage: meshfs service "+usage, 2)
	}
	return mountpointArg(c.Args().First())
}

// newUnitSpec gathers what the unit runs: this binary, the mount flags set
// now (on the command line or through their environment variables), the
// state folder and XDG_STATE_HOME resolved now. Every setting is a flag,
// so nothing else of the environment is copied. The user's systemd has its own environment, so the unit must not
// rely on the one of the shell that ran install.
func newUnitSpec(c *cli.Context, mnt string) (unitSpec, error) {
	bin, err := os.Executable()
	if err == nil {
		bin, err = filepath.EvalSymlinks(bin)
	}
	if err != nil {
		return unitSpec{}, fmt.Errorf("find the meshfs binary: %w", err)
	}
	if err := checkExecutablePath(bin); err != nil {
		return unitSpec{}, err
	}
	state, err := stateDirFor(c.String("state"), mnt)
	if err != nil {
		return unitSpec{}, err
	}
	base, err := stateBase()
	if err != nil {
		return unitSpec{}, err
	}
	args := append(mountFlagArgs(c), "--state="+state)
	// The control socket lives under XDG_STATE_HOME: pinning it lets
	// 'meshfs status' from this shell find the node the unit starts.
	env := []string{"XDG_STATE_HOME=" + filepath.Dir(base)}
	return unitSpec{mountpoint: mnt, binary: bin, args: args, env: env}, nil
}

// mountFlagArgs writes the mount flags that are set as --name=value
// arguments (one value per argument, so none can be taken for a flag).
// --state and --invite are handled by the caller, --no-start is install's.
func mountFlagArgs(c *cli.Context) []string {
	var args []string
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		if name == "state" || name == "invite" || name == "no-start" || !c.IsSet(name) {
			continue
		}
		switch f.(type) {
		case *cli.BoolFlag:
			if c.Bool(name) {
				args = append(args, "--"+name)
			} else {
				args = append(args, "--"+name+"=false")
			}
		case *cli.StringSliceFlag:
			for _, v := range c.StringSlice(name) {
				args = append(args, "--"+name+"="+v)
			}
		default: // strings, numbers and durations print as they parse
			args = append(args, fmt.Sprintf("--%s=%v", name, c.Value(name)))
		}
	}
	return args
}

// unitPath is the unit's name and the file install writes it to, in the
// user's systemd configuration folder.
func unitPath(mnt string) (name, path string, err error) {
	if name, err = unitName(mnt); err != nil {
		return "", "", err
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "", fmt.Errorf("find the systemd user unit folder: %w (set XDG_CONFIG_HOME)", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return name, filepath.Join(dir, "systemd", "user", name), nil
}

// userManager says why systemctl --user cannot be used here: not
// installed, or no user manager to talk to (no login session, as on CI).
func userManager() error {
	if _, err := exec.LookPath("systemctl"); err != nil {
		return errors.New("systemctl is not installed")
	}
	out, err := exec.Command("systemctl", "--user", "show-environment").CombinedOutput()
	if err != nil {
		return fmt.Errorf("no systemd user manager: systemctl --user: %s", firstLine(out, err))
	}
	return nil
}

// systemctl runs systemctl --user with args.
func systemctl(args ...string) error {
	out, err := exec.Command("systemctl", append([]string{"--user"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl --user %s: %s", strings.Join(args, " "), firstLine(out, err))
	}
	return nil
}

// systemctlState is the one-word answer of is-active or is-enabled, which
// exit non-zero for "inactive" or "disabled" but still print the word.
func systemctlState(query, name string) string {
	out, err := exec.Command("systemctl", "--user", query, name).Output()
	if s := strings.TrimSpace(string(out)); s != "" {
		return s
	}
	return "unknown (" + firstLine(nil, err) + ")"
}

func printSystemctl(w io.Writer, cmds [][]string) {
	for _, args := range cmds {
		fmt.Fprintf(w, "  systemctl --user %s\n", strings.Join(args, " "))
	}
}

// firstLine is the first non-empty line of a command's output, or its error.
func firstLine(out []byte, err error) string {
	for line := range strings.Lines(string(out)) {
		if s := strings.TrimSpace(line); s != "" {
			return s
		}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && len(exit.Stderr) > 0 {
		return firstLine(exit.Stderr, nil)
	}
	if err == nil {
		return "no output"
	}
	return err.Error()
}
