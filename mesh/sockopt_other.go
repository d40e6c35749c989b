//go:build !linux

package mesh

import "net"

// setNotSentLowat does nothing where TCP_NOTSENT_LOWAT is not known.
func setNotSentLowat(tc *net.TCPConn, n int) {}
