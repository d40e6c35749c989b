//go:build !linux

package portmap

import (
	"errors"
	"net/netip"
)

// defaultGateway is only known on Linux; elsewhere UPnP IGD is tried.
func defaultGateway() (netip.Addr, error) {
	return netip.Addr{}, errors.New("default gateway: not read on this system")
}
