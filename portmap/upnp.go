package portmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/huin/goupnp/dcps/internetgateway2"
)

// upnpDescription names the mapping in the router's table.
const upnpDescription = "meshfs"

// igdClient is the part of a WANIPConnection service we use; versions 1
// and 2 of the service have it alike.
type igdClient interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string,
		internalPort uint16, internalClient string, enabled bool, description string, leaseSeconds uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	LocalAddr() net.IP
}

var (
	_ igdClient = (*internetgateway2.WANIPConnection1)(nil)
	_ igdClient = (*internetgateway2.WANIPConnection2)(nil)
)

// upnpIGD is a router's WANIPConnection service.
type upnpIGD struct {
	c     igdClient
	local string // this machine's address toward the router
}

// discoverUPnP searches by SSDP, for up to timeout each, for an IGD v2
// router (WANIPConnection:2), then a v1 one (WANIPConnection:1), and
// takes the first that has a local address to forward to.
func discoverUPnP(ctx context.Context, timeout time.Duration) (gateway, error) {
	var errs []error
	for _, search := range []func(context.Context) ([]igdClient, []error, error){searchIGD2, searchIGD1} {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		clients, found, err := search(sctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("upnp: search: %w", err)
		}
		for _, c := range clients {
			if ip := c.LocalAddr(); ip != nil {
				return &upnpIGD{c: c, local: ip.String()}, nil
			}
		}
		errs = append(errs, found...)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("upnp: %w", errs[0]) // one line; the first router's reason
	}
	return nil, errors.New("upnp: no internet gateway device answered")
}

func searchIGD2(ctx context.Context) ([]igdClient, []error, error) {
	cs, errs, err := internetgateway2.NewWANIPConnection2ClientsCtx(ctx)
	return asIGD(cs), errs, err
}

func searchIGD1(ctx context.Context) ([]igdClient, []error, error) {
	cs, errs, err := internetgateway2.NewWANIPConnection1ClientsCtx(ctx)
	return asIGD(cs), errs, err
}

func asIGD[T igdClient](cs []T) []igdClient {
	out := make([]igdClient, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out
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
