package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// mountpointArg returns the absolute, cleaned MOUNTPOINT argument.
func mountpointArg(arg string) (string, error) {
	if arg == "" {
		return "", errors.New("missing MOUNTPOINT argument")
	}
	abs, err := filepath.Abs(arg)
	if err != nil {
		return "", fmt.Errorf("mount point %s: %w", arg, err)
	}
	return abs, nil
}

// stateBase is $XDG_STATE_HOME/meshfs, or ~/.local/state/meshfs.
func stateBase() (string, error) {
	if dir := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "meshfs"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the state folder: %w (set --state or XDG_STATE_HOME)", err)
	}
	return filepath.Join(home, ".local", "state", "meshfs"), nil
}

// mountKey names a mount point in file names: its base name for people,
// plus a hash of the full path so two mount points never share state.
func mountKey(mnt string) string {
	sum := sha256.Sum256([]byte(mnt))
	base := regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(filepath.Base(mnt), "_")
	return base + "-" + hex.EncodeToString(sum[:4])
}

// defaultStateDir is where a mount point's private state lives when
// --state is not given.
func defaultStateDir(mnt string) (string, error) {
	base, err := stateBase()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "mounts", mountKey(mnt)), nil
}

// controlSocket is the Unix socket on which the node serving mnt answers
// invite, remove, status and unmount. It lives under the state base, not in
// the state folder, so commands find it from the mount point alone whatever
// --state was, and its path stays short (sun_path holds 108 bytes).
func controlSocket(mnt string) (string, error) {
	base, err := stateBase()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(mnt))
	return filepath.Join(base, "run", hex.EncodeToString(sum[:8])+".sock"), nil
}

// makePrivateDir creates dir (and parents) and makes it 0700 even if it
// existed with looser permissions.
func makePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}
