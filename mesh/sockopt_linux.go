package mesh

import (
	"net"
	"syscall"
)

// tcpNotSentLowat is TCP_NOTSENT_LOWAT from linux/tcp.h; package syscall
// predates it.
const tcpNotSentLowat = 25

// setNotSentLowat sets TCP_NOTSENT_LOWAT.
func setNotSentLowat(tc *net.TCPConn, n int) {
	if raw, err := tc.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, n)
		})
	}
}
