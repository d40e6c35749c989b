package main

import (
	"fmt"

	"github.com/meshfs/meshfs/mesh"
	"github.com/urfave/cli/v2"
)

// overlayFlags size the partial mesh (mesh/overlay.go): up to
// --full-mesh-up-to members every member connects to every other; above,
// each keeps about --active-view connections.
func overlayFlags() []cli.Flag {
	d := mesh.DefaultConfig()
	return []cli.Flag{
		&cli.IntFlag{Name: "full-mesh-up-to", Value: d.FullMeshUpTo, EnvVars: []string{"MESHFS_FULL_MESH_UP_TO"},
			Usage: "largest mesh, in `MEMBERS`, in which every member connects to every other; above it each keeps --active-view connections"},
		&cli.IntFlag{Name: "active-view", Value: d.ActiveView, EnvVars: []string{"MESHFS_ACTIVE_VIEW"},
			Usage: "`CONNECTIONS` a member dials in a mesh over --full-mesh-up-to (it accepts up to 3 times as many)"},
	}
}

// overlaySize parses the overlay flags.
func overlaySize(c *cli.Context) (fullUpTo, view int, err error) {
	fullUpTo, view = c.Int("full-mesh-up-to"), c.Int("active-view")
	maxPeers := mesh.DefaultConfig().MaxPeers
	switch {
	case fullUpTo < 2 || fullUpTo > maxPeers+1:
		return 0, 0, cli.Exit(fmt.Sprintf("--full-mesh-up-to %d: want 2 to %d members", fullUpTo, maxPeers+1), 2)
	case view < 2 || 3*view > maxPeers:
		return 0, 0, cli.Exit(fmt.Sprintf("--active-view %d: want 2 to %d connections", view, maxPeers/3), 2)
	}
	return fullUpTo, view, nil
}
