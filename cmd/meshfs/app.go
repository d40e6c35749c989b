package main

import (
	"io"
	"time"

	"github.com/urfave/cli/v2"
)

// newApp builds the command line. Every flag has an environment variable,
// and output goes to the given writers so tests can capture it.
func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:    "meshfs",
		Version: releaseVersion(buildInfo()), // printVersion adds commit, Go and protocol
		Usage:   "share files and talk with a small group, through a mounted folder",
		Description: "Each member runs 'meshfs mount'. Files copied into outbox/ are sent, in verified\n" +
			"chunks over mutually authenticated TLS 1.3, to every member's inbox/<sender>/;\n" +
			"lines written to chat reach everyone; peers shows who is in the mesh.",
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		HideHelpCommand:      true,
		EnableBashCompletion: true,
		Commands: []*cli.Command{
			mountCommand(),
			inviteCommand(),
			removeCommand(),
			statusCommand(),
			uiCommand(),
			unmountCommand(),
			serviceCommand(),
			doctorCommand(),
			completionCommand(),
			manCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // run prints errors and picks the exit code
	}
}

func mountCommand() *cli.Command {
	return &cli.Command{
		Name:      "mount",
		Usage:     "join (or create) a mesh and mount its folder; runs until interrupted",
		ArgsUsage: "MOUNTPOINT",
		Description: "With no saved state and no --join, creates a new mesh whose admin is this node.\n" +
			"To join an existing mesh the first time, give --join and the --invite token printed\n" +
			"by 'meshfs invite' on the admin; afterwards 'meshfs mount MOUNTPOINT' is enough.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "0", EnvVars: []string{"MESHFS_LISTEN"},
				Usage: "`ADDR` to accept peers on: PORT, :PORT or HOST:PORT (0 picks a free port)"},
			portMappingFlag(),
			&cli.StringSliceFlag{Name: "join", EnvVars: []string{"MESHFS_JOIN"},
				Usage: "`HOST:PORT` of a member to contact first (repeatable; a hint only)"},
			&cli.BoolFlag{Name: "anchor", EnvVars: []string{"MESHFS_ANCHOR"},
				Usage: "this member has a stable public address: invites list it, and new members may join through it"},
			&cli.StringFlag{Name: "invite", EnvVars: []string{"MESHFS_INVITE"},
				Usage: "invite `TOKEN` from 'meshfs invite', needed once to join; - reads it from stdin"},
			&cli.StringFlag{Name: "name", EnvVars: []string{"MESHFS_NAME"},
				Usage: "display `NAME` shown to other members (default: the host name)"},
			&cli.StringFlag{Name: "state", EnvVars: []string{"MESHFS_STATE"},
				Usage: "private state `DIR` (keys, chat history, transfers); default under $XDG_STATE_HOME/meshfs"},
			&cli.BoolFlag{Name: "no-fuse", EnvVars: []string{"MESHFS_NO_FUSE"},
				Usage: "keep the tree as a plain folder watched for changes instead of a FUSE mount"},
			&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"MESHFS_LOG_FORMAT"},
				Usage: "`FORMAT` of the log on stderr: text or json (one object a line)"},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"MESHFS_LOG_LEVEL"},
				Usage: "least `LEVEL` logged: debug, info, warn or error"},
			&cli.BoolFlag{Name: "debug", EnvVars: []string{"MESHFS_DEBUG"},
				Usage: "same as --log-level debug: log every frame and FUSE call"},
			&cli.StringFlag{Name: "ui", EnvVars: []string{"MESHFS_UI"},
				Usage: "serve a page of members, transfers and chat on `HOST:PORT` (127.0.0.1:PORT); 'meshfs ui' opens it"},
			&cli.BoolFlag{Name: "ui-allow-remote", EnvVars: []string{"MESHFS_UI_ALLOW_REMOTE"},
				Usage: "let --ui bind an address that is not loopback (other machines can reach the page)"},
		}, append(limitFlags(), overlayFlags()...)...),
		Action: mountAction,
	}
}

func inviteCommand() *cli.Command {
	return &cli.Command{
		Name:      "invite",
		Usage:     "print a single-use invite token (admin only); the token is the last line",
		ArgsUsage: "MOUNTPOINT",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "ttl", Value: 24 * time.Hour, EnvVars: []string{"MESHFS_INVITE_TTL"},
				Usage: "how long the token stays valid"},
			&cli.IntFlag{Name: "uses", Value: 1, EnvVars: []string{"MESHFS_INVITE_USES"},
				Usage: "how many nodes may join with it"},
		},
		Action: inviteAction,
	}
}

func removeCommand() *cli.Command {
	return &cli.Command{
		Name:      "remove",
		Usage:     "revoke a member everywhere (admin only)",
		ArgsUsage: "MOUNTPOINT NAME|ID",
		Action:    removeAction,
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show members and transfers in flight, with progress, rate and ETA",
		ArgsUsage: "MOUNTPOINT",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print machine-readable JSON"},
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"},
				Usage: "follow transfers with live progress bars until interrupted"},
		},
		Action: statusAction,
	}
}

func uiCommand() *cli.Command {
	return &cli.Command{
		Name:      "ui",
		Usage:     "print the address of the mount's page (mount with --ui), and open it in a browser if there is one",
		ArgsUsage: "MOUNTPOINT",
		Action:    uiAction,
	}
}

func unmountCommand() *cli.Command {
	return &cli.Command{
		Name:      "unmount",
		Aliases:   []string{"umount"},
		Usage:     "stop the node serving MOUNTPOINT and unmount it",
		ArgsUsage: "MOUNTPOINT",
		Action:    unmountAction,
	}
}
