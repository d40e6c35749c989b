package portmap

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
)

// errNoDefaultRoute: the routing table has no IPv4 default route.
var errNoDefaultRoute = errors.New("default gateway: no IPv4 default route")

// parseRoutes finds the gateway of the default route in the text of
// /proc/net/route: columns Iface, Destination, Gateway, Flags, ... with
// addresses as 8 hex digits in the kernel's (little-endian) byte order.
func parseRoutes(data []byte) (netip.Addr, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[1] != "00000000" {
			continue
		}
		gw, err := hex.DecodeString(f[2])
		if err != nil || len(gw) != 4 {
			continue
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], binary.LittleEndian.Uint32(gw))
		if ip := netip.AddrFrom4(b); !ip.IsUnspecified() {
			return ip, nil
		}
	}
	return netip.Addr{}, errNoDefaultRoute
}
