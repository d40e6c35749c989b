package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/huin/goupnp/dcps/internetgateway2"
)

// upnpDescription names the mapping in the router's table.
const upnpDescription = "meshfs"

// upnpIGD is a router's WANIPConnection:1 service (IGD v1 and v2 both
// offer it).
type upnpIGD struct {
	c     *internetgateway2.WANIPConnection1
	local string // this machine's address toward the router
}

// discoverUPnP searches by SSDP for up to timeout and takes the first
// router that has a local address to forward to.
func discoverUPnP(ctx context.Context, timeout time.Duration) (gateway, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	clients, errs, err := internetgateway2.NewWANIPConnection1ClientsCtx(ctx)
	if err != nil {
		return nil, fmt.Errorf("upnp: search: %w", err)
	}
	for _, c := range clients {
		if ip := c.LocalAddr(); ip != nil {
			return &upnpIGD{c: c, local: ip.String()}, nil
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("upnp: %w", errors.Join(errs...))
	}
	return nil, errors.New("upnp: no internet gateway device answered")
}

func (g *upnpIGD) name() string { return "upnp" }

func (g *upnpIGD) externalIP(ctx context.Context) (netip.Addr, error) {
	s, err := g.c.GetExternalIPAddressCtx(ctx)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("upnp: external address: %w", err)
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("upnp: external address %q: %w", s, err)
	}
	return ip, nil
}

// add asks for exactly external: IGD v1 cannot pick a port for us.
func (g *upnpIGD) add(ctx context.Context, internal, external uint16, lease time.Duration) (uint16, time.Duration, error) {
	err := g.c.AddPortMappingCtx(ctx, "", external, "TCP", internal, g.local, true, upnpDescription,
		uint32(lease/time.Second))
	if err != nil {
		return 0, 0, fmt.Errorf("upnp: map port %d: %w", internal, err)
	}
	return external, lease, nil
}

func (g *upnpIGD) remove(ctx context.Context, _, external uint16) error {
	if err := g.c.DeletePortMappingCtx(ctx, "", external, "TCP"); err != nil {
		return fmt.Errorf("upnp: delete mapping of port %d: %w", external, err)
	}
	return nil
}
