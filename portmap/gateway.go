package portmap

import (
	"context"
	"errors"
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
// then UPnP IGD (an SSDP search that takes a few seconds).
func discover(ctx context.Context, timeout time.Duration) (gateway, error) {
	var errs []error
	if gw, err := discoverNATPMP(ctx, timeout); err == nil {
		return gw, nil
	} else {
		errs = append(errs, err)
	}
	gw, err := discoverUPnP(ctx, timeout)
	if err == nil {
		return gw, nil
	}
	errs = append(errs, err)
	return nil, errors.Join(append([]error{ErrNoGateway}, errs...)...)
}
