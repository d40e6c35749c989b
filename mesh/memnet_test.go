package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// memNet is an in-memory network for tests: listeners registered by
// address ("10.0.0.1:7000"), and dials that connect to them with a
// buffered pipe. It gives Config.Listener and Config.Dial, so many nodes
// run in one process without sockets (sim_test.go). Each node should have
// its own IP, as the per-IP limits of the accept loop count by IP.
type memNet struct {
	mu        sync.Mutex
	listeners map[string]*memListener
	nextPort  int // the next ephemeral port of a dialing end
}

// memListenPort is the port every node of a memNet listens on.
const memListenPort = 7000

// memBuffer is what one direction of a memConn holds unread, like a
// socket buffer: a writer past it blocks until the reader reads.
const memBuffer = 256 << 10

// memBacklog caps connections waiting for Accept; a dial past it is
// refused, as a full SYN queue drops.
const memBacklog = 512

func newMemNet() *memNet {
	return &memNet{listeners: map[string]*memListener{}, nextPort: 32768}
}

// memIP is the i-th node's IP: 10.0.0.1, 10.0.0.2, ... (i from 0).
func memIP(i int) string {
	i++
	return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
}

// listen registers a listener at ip:memListenPort.
func (m *memNet) listen(ip string) (*memListener, error) {
	addr := net.JoinHostPort(ip, fmt.Sprint(memListenPort))
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.listeners[addr]; l != nil && !l.isClosed() {
		return nil, fmt.Errorf("listen %s: %w", addr, syscall.EADDRINUSE)
	}
	l := &memListener{mn: m, addr: memAddr(addr), done: make(chan struct{}), ready: make(chan struct{})}
	m.listeners[addr] = l
	return l, nil
}

// dialFrom returns a Config.Dial whose connections come from ip.
func (m *memNet) dialFrom(ip string) func(ctx context.Context, addr string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		m.mu.Lock()
		l := m.listeners[addr]
		port := m.nextPort
		m.nextPort = 32768 + (m.nextPort-32768+1)%28000
		m.mu.Unlock()
		refused := &net.OpError{Op: "dial", Net: "mem", Addr: memAddr(addr), Err: syscall.ECONNREFUSED}
		if l == nil {
			return nil, refused
		}
		if err := ctx.Err(); err != nil {
			return nil, &net.OpError{Op: "dial", Net: "mem", Addr: memAddr(addr), Err: err}
		}
		local, remote := newMemPair(memAddr(net.JoinHostPort(ip, fmt.Sprint(port))), l.addr)
		if !l.enqueue(remote) {
			return nil, refused
		}
		return local, nil
	}
}

// memAddr is an address of a memNet: "ip:port". It is not a *net.TCPAddr,
// so nothing takes it for an interface address.
type memAddr string

func (memAddr) Network() string  { return "mem" }
func (a memAddr) String() string { return string(a) }

// memListener is a listener of a memNet.
type memListener struct {
	mn   *memNet
	addr memAddr

	mu     sync.Mutex
	queue  []*memConn    // dialed, not accepted yet
	ready  chan struct{} // closed and replaced when queue grows
	closed bool
	done   chan struct{} // closed by Close
}

var _ net.Listener = (*memListener)(nil)

// enqueue hands c to Accept; false when the listener is closed or its
// backlog is full.
func (l *memListener) enqueue(c *memConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(l.queue) >= memBacklog {
		return false
	}
	l.queue = append(l.queue, c)
	close(l.ready)
	l.ready = make(chan struct{})
	return true
}

// Accept waits for a dialed connection or Close.
func (l *memListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: "mem", Addr: l.addr, Err: net.ErrClosed}
		}
		if len(l.queue) > 0 {
			c := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			l.mu.Unlock()
			return c, nil
		}
		ready := l.ready
		l.mu.Unlock()
		select {
		case <-ready:
		case <-l.done:
		}
	}
}

// Close unregisters the listener and closes the connections not accepted.
func (l *memListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	queued := l.queue
	l.queue = nil
	close(l.done)
	l.mu.Unlock()
	for _, c := range queued {
		c.Close()
	}
	l.mn.mu.Lock()
	if l.mn.listeners[string(l.addr)] == l {
		delete(l.mn.listeners, string(l.addr))
	}
	l.mn.mu.Unlock()
	return nil
}

func (l *memListener) Addr() net.Addr { return l.addr }

func (l *memListener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// memPipe is one direction of a memConn: bytes written and not read yet.
type memPipe struct {
	mu      sync.Mutex
	buf     []byte
	wclosed bool          // the writing end closed: reads drain, then EOF
	rclosed bool          // the reading end closed: writes fail
	changed chan struct{} // closed and replaced on every change
}

func newMemPipe() *memPipe { return &memPipe{changed: make(chan struct{})} }

// changedLocked wakes everyone waiting on p (mu held).
func (p *memPipe) changedLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// memConn is one end of an in-memory connection. Unlike net.Pipe, a
// write returns once its bytes are buffered (up to memBuffer), as on a
// socket, so two ends may write at once. Deadlines work as on net.Pipe.
type memConn struct {
	local, remote memAddr
	rx, tx        *memPipe
	readDL        *memDeadline
	writeDL       *memDeadline
	closeOnce     sync.Once
	done          chan struct{} // closed by Close
}

var _ net.Conn = (*memConn)(nil)

// newMemPair returns the two ends of a connection from a to b.
func newMemPair(a, b memAddr) (*memConn, *memConn) {
	ab, ba := newMemPipe(), newMemPipe()
	x := &memConn{local: a, remote: b, rx: ba, tx: ab, readDL: newMemDeadline(), writeDL: newMemDeadline(), done: make(chan struct{})}
	y := &memConn{local: b, remote: a, rx: ab, tx: ba, readDL: newMemDeadline(), writeDL: newMemDeadline(), done: make(chan struct{})}
	return x, y
}

// Read reads what the other end wrote, waiting for some.
func (c *memConn) Read(b []byte) (int, error) {
	for {
		if err := c.check(c.readDL, "read"); err != nil {
			return 0, err
		}
		p := c.rx
		p.mu.Lock()
		if len(p.buf) > 0 || len(b) == 0 {
			k := copy(b, p.buf)
			p.buf = p.buf[k:]
			if len(p.buf) == 0 {
				p.buf = nil
			}
			p.changedLocked()
			p.mu.Unlock()
			return k, nil
		}
		if p.wclosed {
			p.mu.Unlock()
			return 0, io.EOF
		}
		wait := p.changed
		p.mu.Unlock()
		select {
		case <-wait:
		case <-c.readDL.wait():
		case <-c.done:
		}
	}
}

// Write buffers b for the other end, waiting while the buffer is full.
func (c *memConn) Write(b []byte) (int, error) {
	n := 0
	for {
		if err := c.check(c.writeDL, "write"); err != nil {
			return n, err
		}
		p := c.tx
		p.mu.Lock()
		if p.rclosed {
			p.mu.Unlock()
			return n, &net.OpError{Op: "write", Net: "mem", Source: c.local, Addr: c.remote, Err: syscall.EPIPE}
		}
		if k := min(memBuffer-len(p.buf), len(b)); k > 0 {
			p.buf = append(p.buf, b[:k]...)
			b, n = b[k:], n+k
			p.changedLocked()
		}
		if len(b) == 0 {
			p.mu.Unlock()
			return n, nil
		}
		wait := p.changed
		p.mu.Unlock()
		select {
		case <-wait:
		case <-c.writeDL.wait():
		case <-c.done:
		}
	}
}

// check reports this end closed or the deadline dl passed.
func (c *memConn) check(dl *memDeadline, op string) error {
	select {
	case <-c.done:
		return &net.OpError{Op: op, Net: "mem", Source: c.local, Addr: c.remote, Err: net.ErrClosed}
	default:
	}
	select {
	case <-dl.wait():
		return &net.OpError{Op: op, Net: "mem", Source: c.local, Addr: c.remote, Err: os.ErrDeadlineExceeded}
	default:
	}
	return nil
}

// Close ends both directions: the other end reads what is buffered, then
// EOF, and its writes fail; calls blocked on this end return.
func (c *memConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		for _, p := range []*memPipe{c.rx, c.tx} {
			p.mu.Lock()
			if p == c.rx {
				p.rclosed, p.buf = true, nil
			} else {
				p.wclosed = true
			}
			p.changedLocked()
			p.mu.Unlock()
		}
	})
	return nil
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

func (c *memConn) SetDeadline(t time.Time) error {
	c.readDL.set(t)
	c.writeDL.set(t)
	return nil
}

func (c *memConn) SetReadDeadline(t time.Time) error  { c.readDL.set(t); return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { c.writeDL.set(t); return nil }

// memDeadline is a deadline as a channel closed when it passes, after
// net.Pipe's pipeDeadline.
type memDeadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passed
}

func newMemDeadline() *memDeadline { return &memDeadline{cancel: make(chan struct{})} }

// set arms the deadline at t; zero disarms it.
func (d *memDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close cancel
	}
	d.timer = nil
	closed := isClosedChan(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns a channel closed once the deadline passed.
func (d *memDeadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosedChan(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
	}
	return false
}

// TestMemNet: the in-memory network of the simulation carries bytes both
// ways at once, keeps deadlines, ends in EOF after Close, unblocks both
// ends on Close, refuses dials to no listener, and gives each end the
// addresses the accept loop's per-IP limits need.
func TestMemNet(t *testing.T) {
	mn := newMemNet()
	l, err := mn.listen(memIP(0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dial := mn.dialFrom(memIP(1))
	if _, err := dial(t.Context(), "10.9.9.9:7000"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial(no listener) = %v, want connection refused", err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	a, err := dial(t.Context(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if host, _, _ := net.SplitHostPort(b.RemoteAddr().String()); host != memIP(1) {
		t.Errorf("RemoteAddr() = %v, want host %s", b.RemoteAddr(), memIP(1))
	}
	if a.RemoteAddr().String() != l.Addr().String() {
		t.Errorf("RemoteAddr() = %v, want %v", a.RemoteAddr(), l.Addr())
	}
	// Both ends write before either reads: buffered, no deadlock.
	for _, c := range []net.Conn{a, b} {
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatalf("Write() = %v", err)
		}
	}
	for _, c := range []net.Conn{a, b} {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("Read() = %q, %v, want hello", buf, err)
		}
	}
	b.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read() past the deadline = %v, want ErrDeadlineExceeded", err)
	}
	b.SetReadDeadline(time.Time{})
	big := make([]byte, 2*memBuffer)
	a.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
	if n, err := a.Write(big); !errors.Is(err, os.ErrDeadlineExceeded) || n != memBuffer {
		t.Errorf("Write(2 buffers) unread = %d, %v, want %d, ErrDeadlineExceeded", n, err, memBuffer)
	}
	a.SetWriteDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := a.Write(big); done <- err }() // blocks: the buffer is full
	a.Close()
	if err := <-done; err == nil {
		t.Error("Write() on a closed conn = nil, want an error")
	}
	if n, err := io.Copy(io.Discard, b); err != nil || n != memBuffer {
		t.Errorf("Read() after the other end closed = %d, %v, want %d then EOF", n, err, memBuffer)
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Error("Write() to a closed end = nil, want an error")
	}
	go func() { _, err := b.Read(make([]byte, 1)); done <- err }()
	b.Close()
	if err := <-done; err == nil {
		t.Error("Read() on a closed conn = nil, want an error")
	}
	l.Close()
	if _, err := dial(context.Background(), l.Addr().String()); err == nil {
		t.Error("dial(closed listener) = nil, want an error")
	}
}
