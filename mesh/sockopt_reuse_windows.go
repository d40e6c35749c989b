package mesh

import "syscall"

// reuseAddr does nothing on Windows, where SO_REUSEADDR lets a socket take
// over a port another socket uses: a punch there fails to bind the shared
// port, and data goes through members both sides reach.
func reuseAddr(network, address string, c syscall.RawConn) error { return nil }
