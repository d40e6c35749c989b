package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ErrNoGateway means no router answered NAT-PMP or UPnP IGD.
var ErrNoGateway = errors.New("no router offers port mapping (tried NAT-PMP and UPnP IGD)")

// gateway is one router protocol able to forward a TCP port.
type gateway interface {
	// name is the protocol, for status and logs ("nat-pmp", "upnp").
	name() string
	// externalIP is the router's public address.
	externalIP(ctx context.Context) (netip.Addr, error)
	// add maps external to internal on this machine for lease; the router
	// may grant another external port or a shorter lease.
	add(ctx context.Context, internal, external uint16, lease time.Duration) (uint16, time.Duration, error)
	// remove deletes the mapping add made (NAT-PMP names it by the
	// internal port, UPnP by the external one).
	remove(ctx context.Context, internal, external uint16) error
}

// discoverFunc finds a gateway; tests replace it.
type discoverFunc func(ctx context.Context, timeout time.Duration) (gateway, error)

// discover tries NAT-PMP at the default gateway first (one UDP exchange),
// then UPnP IGD (an SSDP search that takes a few seconds). The error is
// one line: status and the peers file show it as the reason.
func discover(ctx context.Context, timeout time.Duration) (gateway, error) {
	gw, pmpErr := discoverNATPMP(ctx, timeout)
	if pmpErr == nil {
		return gw, nil
	}
	gw, upnpErr := discoverUPnP(ctx, timeout)
	if upnpErr == nil {
		return gw, nil
	}
	return nil, fmt.Errorf("%w: %v; %v", ErrNoGateway, pmpErr, upnpErr)
}
