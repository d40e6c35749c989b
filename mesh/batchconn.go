package mesh

import (
	"bufio"
	"net"
	"sync"
)

// batchConn sits between TLS and the TCP connection. crypto/tls writes each
// record (16 KiB at most) with a write(2) of its own and reads records one
// read(2) at a time: 64 system calls per MiB each way, which on loopback
// cost as much CPU as the cipher. batchConn reads ahead through a buffer,
// and once hold is on it gathers writes into batchSize pieces, sent when
// the buffer fills or at flush: the connection's writer flushes whenever
// its queues run empty, so a lone control frame still goes out at once.
// Before hold (the handshake), every write goes out as it comes.
type batchConn struct {
	net.Conn
	r *bufio.Reader // reader goroutine only (handshake before)

	mu   sync.Mutex // tls serialises its writes, but not with flush
	w    *bufio.Writer
	hold bool
}

// batchSize is the buffer each way: 16 records.
const batchSize = 256 << 10

func newBatchConn(c net.Conn) *batchConn {
	return &batchConn{Conn: c, r: bufio.NewReaderSize(c, batchSize), w: bufio.NewWriterSize(c, batchSize)}
}

func (c *batchConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.w.Write(p)
	if err == nil && !c.hold {
		err = c.w.Flush()
	}
	return n, err
}

// startHolding makes writes wait for flush or a full buffer. Like flush,
// it does nothing on a nil batchConn.
func (c *batchConn) startHolding() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.hold = true
	c.mu.Unlock()
}

// flush sends what writes gathered.
func (c *batchConn) flush() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.w.Flush()
}
