//go:build !linux

package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

// errServiceLinux is every service command's answer off Linux.
var errServiceLinux = errors.New("meshfs service manages systemd user units, which exist on Linux only")

func serviceInstall(*cli.Context) error   { return errServiceLinux }
func serviceUninstall(*cli.Context) error { return errServiceLinux }
func serviceStatus(*cli.Context) error    { return errServiceLinux }
