package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/meshfs/meshfs/mesh"
	meshsync "github.com/meshfs/meshfs/sync"
	"github.com/urfave/cli/v2"
)

// version is the meshfs release, set at link time with
// -ldflags "-X main.version=v1.2.3". Without it, the module version that
// 'go install' recorded is used, or "devel" for a build from a checkout.
var version string

func init() {
	cli.VersionPrinter = func(c *cli.Context) { printVersion(c.App.Writer) }
}

// printVersion is 'meshfs --version': what a bug report needs to name the
// build exactly, and the wire protocol it speaks to other members.
func printVersion(w io.Writer) {
	info := buildInfo()
	fmt.Fprintf(w, "meshfs %s\n", releaseVersion(info))
	fmt.Fprintf(w, "  commit    %s\n", buildCommit(info))
	fmt.Fprintf(w, "  go        %s\n", runtime.Version())
	fmt.Fprintf(w, "  protocol  mesh %d, sync %d\n", mesh.ProtocolVersion, meshsync.Version)
}

// buildInfo is what the Go toolchain recorded in the binary, or nil.
func buildInfo() *debug.BuildInfo {
	info, _ := debug.ReadBuildInfo()
	return info
}

// releaseVersion is version, else the module version in info, else "devel".
func releaseVersion(info *debug.BuildInfo) string {
	switch {
	case version != "":
		return version
	case info != nil && info.Main.Version != "" && info.Main.Version != "(devel)":
		return info.Main.Version
	}
	return "devel"
}

// buildCommit is the VCS revision the binary was built from, with "-dirty"
// when the work tree had changes, or "unknown" when the build recorded none
// (go test, or -buildvcs=false).
func buildCommit(info *debug.BuildInfo) string {
	if info == nil {
		return "unknown"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	if rev == "" {
		return "unknown"
	}
	return rev + dirty
}
