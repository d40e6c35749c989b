package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// oneMountpoint returns the absolute MOUNTPOINT of a command that takes
// exactly want arguments, the first being the mount point.
func oneMountpoint(c *cli.Context, want int, usage string) (string, error) {
	if c.NArg() != want {
		return "", cli.Exit("usage: meshfs "+c.Command.Name+" "+usage, 2)
	}
	return mountpointArg(c.Args().First())
}

func inviteAction(c *cli.Context) error {
	mnt, err := oneMountpoint(c, 1, "MOUNTPOINT [--ttl DURATION] [--uses N]")
	if err != nil {
		return err
	}
	if c.Duration("ttl") <= 0 || c.Int("uses") < 1 {
		return cli.Exit("--ttl must be positive and --uses at least 1", 2)
	}
	var inv inviteResult
	req := controlRequest{Op: "invite", TTL: c.Duration("ttl"), Uses: c.Int("uses")}
	if err := callControl(c.Context, mnt, req, &inv); err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "Invite to mesh %s: %d use(s), valid until %s.\n", inv.MeshID, inv.Uses,
		inv.Expires.Local().Format(time.DateTime))
	fmt.Fprintf(w, "On the new member's machine, run (once):\n")
	fmt.Fprintf(w, "  MESHFS_INVITE=%s meshfs mount ~/mesh --join %s\n", inv.Token, inv.Join)
	fmt.Fprintf(w, "Anyone holding the token can join until it is used or expires. The token:\n")
	fmt.Fprintln(w, inv.Token)
	return nil
}

// joinAddrs is the --join value an invite prints: the addresses of
// mesh.Node.JoinAddrs (this node's, then the anchors'), joined by commas,
// which the flag splits; or a hint made from the listen address when it
// has none.
func joinAddrs(addrs []string, listen string) string {
	if len(addrs) > 0 {
		return strings.Join(addrs, ",")
	}
	return joinHint(listen)
}

// joinHint turns a listen address into one another machine can dial: an
// unspecified host (":8000", "0.0.0.0:8000") becomes this machine's first
// non-loopback address.
func joinHint(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return listen
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return net.JoinHostPort(ipn.IP.String(), port)
		}
	}
	if name, err := os.Hostname(); err == nil {
		return net.JoinHostPort(name, port)
	}
	return listen
}

func removeAction(c *cli.Context) error {
	mnt, err := oneMountpoint(c, 2, "MOUNTPOINT NAME|ID")
	if err != nil {
		return err
	}
	var res removeResult
	if err := callControl(c.Context, mnt, controlRequest{Op: "remove", Peer: c.Args().Get(1)}, &res); err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "removed %s (%s); every member now refuses it\n", res.Name, res.ID)
	return nil
}

func statusAction(c *cli.Context) error {
	mnt, err := oneMountpoint(c, 1, "MOUNTPOINT [--json] [--watch]")
	if err != nil {
		return err
	}
	if c.Bool("watch") {
		return watchStatus(c.Context, c.App.Writer, mnt)
	}
	var raw json.RawMessage
	if err := callControl(c.Context, mnt, controlRequest{Op: "status"}, &raw); err != nil {
		return err
	}
	if c.Bool("json") {
		var buf bytes.Buffer
		json.Indent(&buf, raw, "", "  ")
		buf.WriteByte('\n')
		_, err := c.App.Writer.Write(buf.Bytes())
		return err
	}
	st, err := decodeStatus(raw)
	if err != nil {
		return err
	}
	return printStatus(c.App.Writer, st, time.Now())
}

func unmountAction(c *cli.Context) error {
	mnt, err := oneMountpoint(c, 1, "MOUNTPOINT")
	if err != nil {
		return err
	}
	if err := callControl(c.Context, mnt, controlRequest{Op: "shutdown"}, nil); err != nil {
		return err
	}
	sock, _ := controlSocket(mnt)
	// The node removes its socket as the last step of a clean shutdown.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(sock); os.IsNotExist(err) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the node for %s did not stop within 30s", mnt)
}
