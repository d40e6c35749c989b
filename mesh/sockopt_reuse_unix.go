//go:build unix

package mesh

import "syscall"

// reuseAddr sets SO_REUSEADDR on a socket before it binds. Every dialed
// connection has it, so that a punch can later bind a second socket to
// the same local port (the one whose outside address a NAT already
// forwards); sockets that are not listening may then share a port as long
// as they connect to different addresses.
func reuseAddr(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
