package main

import "github.com/urfave/cli/v2"

// serviceCommand is 'meshfs service install|uninstall|status': a mount run
// by the user's systemd, started at login and restarted after a failure.
// The actions are in service_linux.go; elsewhere they say Linux only.
func serviceCommand() *cli.Command {
	return &cli.Command{
		Name:  "service",
		Usage: "run a mount as a systemd user service, started at every login (Linux)",
		Subcommands: []*cli.Command{
			{
				Name:      "install",
				Usage:     "write a systemd user unit that runs 'meshfs mount MOUNTPOINT' with these flags, enable and start it",
				ArgsUsage: "MOUNTPOINT [mount flags]",
				Description: "The unit runs this binary by its absolute path, with the mount flags set now (on the command\n" +
					"line or through their MESHFS_* variables) and the state folder resolved now. --invite is refused: join once by hand first.",
				Flags:  serviceInstallFlags(),
				Action: serviceInstall,
			},
			{
				Name:      "uninstall",
				Usage:     "stop and disable the unit for MOUNTPOINT and remove the file install wrote",
				ArgsUsage: "MOUNTPOINT",
				Action:    serviceUninstall,
			},
			{
				Name:      "status",
				Usage:     "show whether the unit for MOUNTPOINT is installed, running and enabled",
				ArgsUsage: "MOUNTPOINT",
				Action:    serviceStatus,
			},
		},
	}
}

// serviceInstallFlags are the mount command's flags, so install accepts
// exactly what mount does, plus --no-start.
func serviceInstallFlags() []cli.Flag {
	return append(mountCommand().Flags, &cli.BoolFlag{Name: "no-start", EnvVars: []string{"MESHFS_NO_START"},
		Usage: "only write the unit; do not enable or start it"})
}
