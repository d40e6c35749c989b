package portmap

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	natpmp "github.com/jackpal/go-nat-pmp"
)

// natPMP is a router answering NAT-PMP on UDP port 5351.
type natPMP struct {
	c *natpmp.Client
}

// discoverNATPMP asks the default gateway for its external address; an
// answer means it speaks NAT-PMP.
func discoverNATPMP(ctx context.Context, timeout time.Duration) (gateway, error) {
	gw, err := defaultGateway()
	if err != nil {
		return nil, fmt.Errorf("nat-pmp: %w", err)
	}
	g := &natPMP{c: natpmp.NewClientWithTimeout(net.IP(gw.AsSlice()), timeout)}
	if _, err := g.externalIP(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *natPMP) name() string { return "nat-pmp" }

// The library's calls take no context; its own timeout bounds each one,
// and ctx is checked before each so a stop is not delayed further.
func (g *natPMP) externalIP(ctx context.Context) (netip.Addr, error) {
	if err := ctx.Err(); err != nil {
		return netip.Addr{}, err
	}
	r, err := g.c.GetExternalAddress()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("nat-pmp: external address: %w", err)
	}
	return netip.AddrFrom4(r.ExternalIPAddress), nil
}

func (g *natPMP) add(ctx context.Context, internal, external uint16, lease time.Duration) (uint16, time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	r, err := g.c.AddPortMapping("tcp", int(internal), int(external), int(lease/time.Second))
	if err != nil {
		return 0, 0, fmt.Errorf("nat-pmp: map port %d: %w", internal, err)
	}
	return r.MappedExternalPort, time.Duration(r.PortMappingLifetimeInSeconds) * time.Second, nil
}

// remove asks for a lifetime of 0, which deletes the mapping of internal.
func (g *natPMP) remove(ctx context.Context, internal, _ uint16) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := g.c.AddPortMapping("tcp", int(internal), 0, 0); err != nil {
		return fmt.Errorf("nat-pmp: delete mapping of port %d: %w", internal, err)
	}
	return nil
}
