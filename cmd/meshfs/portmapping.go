package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/meshfs/meshfs/portmap"
	meshsync "github.com/meshfs/meshfs/sync"
	"github.com/urfave/cli/v2"
)

// portMappingFlag is --port-mapping. It is on by default, as in Syncthing
// and Tailscale: the router then forwards only the port the TLS listener
// already accepts members on, and a member at home becomes reachable
// without the person touching the router.
func portMappingFlag() cli.Flag {
	return &cli.StringFlag{Name: "port-mapping", Value: "auto", EnvVars: []string{"MESHFS_PORT_MAPPING"},
		Usage: "`MODE` auto asks the router (NAT-PMP, UPnP IGD) to forward the listen port; off never asks"}
}

// portMappingOn parses --port-mapping.
func portMappingOn(c *cli.Context) (bool, error) {
	switch v := c.String("port-mapping"); v {
	case "auto", "":
		return true, nil
	case "off":
		return false, nil
	default:
		return false, cli.Exit(fmt.Sprintf("--port-mapping %q: want auto or off", v), 2)
	}
}

// startPortMapping asks the router to forward the listen port and tells
// the node the forwarded address whenever it changes. A node that listens
// on loopback only has nothing to forward.
func (d *daemon) startPortMapping() error {
	if !d.opts.portMapping {
		d.mapProblem = "off (--port-mapping=off)"
		return nil
	}
	host, portText, err := net.SplitHostPort(d.node.Addr().String())
	if ip := net.ParseIP(host); err != nil || ip != nil && ip.IsLoopback() {
		d.mapProblem = "listening on loopback only"
		return nil
	}
	port, _ := strconv.ParseUint(portText, 10, 16)
	cfg := portmap.DefaultConfig()
	cfg.Port = uint16(port)
	cfg.Logger = d.log.With("pkg", "portmap")
	cfg.OnChange = func(st portmap.Status) {
		addr := ""
		if st.Mapped() {
			addr = st.External.String()
		}
		if err := d.node.SetMapped(addr); err != nil {
			d.log.Warn("mapped address not advertised", "addr", addr, "err", err,
				"fix", "the router gave an address members cannot dial; forward the port by hand")
		}
	}
	m, err := portmap.New(cfg)
	if err != nil {
		return err
	}
	d.mapper = m
	m.Start()
	return nil
}

// addresses is sync's Config.Addresses: the node's own addresses and the
// state of the port mapping, for status and the peers file.
func (d *daemon) addresses() meshsync.AddressStatus {
	if d.node == nil {
		return meshsync.AddressStatus{}
	}
	a := d.node.Addresses()
	st := meshsync.AddressStatus{Listen: a.Listen, Local: a.Local, Observed: a.Observed, Mapped: a.Mapped,
		MappingProblem: d.mapProblem}
	if d.mapper != nil {
		switch ms := d.mapper.Status(); {
		case ms.Mapped():
			st.MappingProblem = ""
		case ms.Err != nil:
			st.MappingProblem = ms.Err.Error()
		default:
			st.MappingProblem = "asking the router"
		}
	}
	return st
}
