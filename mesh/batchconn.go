package mesh

import (
	"net"
	"sync"
)

// batchConn sits between TLS and the TCP connection. crypto/tls writes each
// record (16 KiB at most) with a write(2) of its own and reads records one
// read(2) at a time: 64 system calls per MiB each way, which on loopback
// cost as much CPU as the cipher (BenchmarkBulkThroughput: 0.83-1.30 GB/s
// without, 1.4-1.8 GB/s with). batchConn reads ahead, and once hold is on it
// gathers writes into batchSize pieces, sent when the buffer fills or at
// flush: the connection's writer flushes whenever its queues run empty, so a
// lone control frame still goes out at once. Before hold (the handshake),
// every write goes out as it comes.
//
// Its buffers come from the node's pool and go back as soon as they are
// empty, so the many idle connections of a large mesh hold none.
type batchConn struct {
	net.Conn
	pool framePool

	rbase []byte // read-ahead buffer; reader goroutine only (handshake before)
	rbuf  []byte // its unread part

	mu   sync.Mutex // tls serialises its writes, but not with flush
	wbuf []byte
	hold bool
}

// batchSize is the buffer each way: 4 records. Larger buffers gained nothing
// in BenchmarkBulkThroughput.
const batchSize = 64 << 10

func newBatchConn(c net.Conn, pool framePool) *batchConn {
	return &batchConn{Conn: c, pool: pool}
}

func (c *batchConn) Read(p []byte) (int, error) {
	if len(c.rbuf) == 0 {
		if len(p) >= batchSize {
			return c.Conn.Read(p)
		}
		buf := c.pool.get(batchSize)[:batchSize]
		n, err := c.Conn.Read(buf)
		if n == 0 {
			c.pool.put(buf[:0])
			return 0, err
		}
		c.rbase, c.rbuf = buf, buf[:n]
	}
	n := copy(p, c.rbuf)
	c.rbuf = c.rbuf[n:]
	if len(c.rbuf) == 0 {
		c.pool.put(c.rbase[:0])
		c.rbase, c.rbuf = nil, nil
	}
	return n, nil
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hold {
		return c.Conn.Write(p)
	}
	if len(c.wbuf)+len(p) > batchSize {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) >= batchSize {
		return c.Conn.Write(p)
	}
	if c.wbuf == nil {
		c.wbuf = c.pool.get(batchSize)
	}
	c.wbuf = append(c.wbuf, p...)
	return len(p), nil
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
	return c.flushLocked()
}

func (c *batchConn) flushLocked() error {
	if c.wbuf == nil {
		return nil
	}
	_, err := c.Conn.Write(c.wbuf)
	c.pool.put(c.wbuf[:0])
	c.wbuf = nil
	return err
}
