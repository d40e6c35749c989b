package portmap

import (
	"fmt"
	"net/netip"
	"os"
)

// defaultGateway reads the IPv4 default route from /proc/net/route.
func defaultGateway() (netip.Addr, error) {
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("default gateway: %w", err)
	}
	return parseRoutes(data)
}
