package mesh

import "net"

// Buffering on a member connection bounds how much bulk data can sit in
// the TCP stream ahead of a chat frame. The receiver reads frames in order
// and stops reading while its handler applies back-pressure (a receiver
// writing file blocks to a slow disk), so everything the kernel buffers on
// both ends lies between a chat line and its reader: with autotuning that
// was 4 MiB unsent at the sender and up to 20 MiB queued at the receiver,
// tens of milliseconds at disk speed.
const (
	// notSentLowat caps the bytes written but not yet sent: the writer
	// blocks earlier, so it picks the next frame (a chat frame before
	// queued bulk) later. It does not cap the window in flight.
	notSentLowat = 128 << 10
	// recvBuffer is SO_RCVBUF (the kernel doubles it for its overhead).
	// It is the receive window, so it also caps one connection's rate at
	// recvBuffer per round trip: 1 MiB per 10 ms is 100 MB/s.
	recvBuffer = 1 << 20
)

// tuneConn applies the buffer limits above to a member connection before
// its handshake. It is best effort: a connection that is not TCP, or a
// kernel that refuses, keeps its defaults.
func tuneConn(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	tc.SetReadBuffer(recvBuffer)
	setNotSentLowat(tc, notSentLowat)
}
