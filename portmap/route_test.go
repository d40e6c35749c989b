package portmap

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseRoutes(t *testing.T) {
	const header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	tests := []struct {
		name, table string
		want        netip.Addr
		err         error
	}{
		{"default via 192.168.1.1", header +
			"eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
			"eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
			netip.MustParseAddr("192.168.1.1"), nil},
		{"default via 10.213.8.1", header + "veth0\t00000000\t0108D50A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
			netip.MustParseAddr("10.213.8.1"), nil},
		{"no default route", header + "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
			netip.Addr{}, errNoDefaultRoute},
		{"default route without gateway", header + "wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n",
			netip.Addr{}, errNoDefaultRoute},
		{"garbage", header + "eth0 00000000 zz\nshort\n", netip.Addr{}, errNoDefaultRoute},
		{"empty", "", netip.Addr{}, errNoDefaultRoute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRoutes([]byte(tc.table))
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("parseRoutes() = %v, %v, want %v, %v", got, err, tc.want, tc.err)
			}
		})
	}
}
