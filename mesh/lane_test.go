package mesh

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// gatedConn records every Write as one piece; the first Write blocks until
// open is closed, as a full socket would.
type gatedConn struct {
	net.Conn // nil: only what the writer calls is implemented
	entered  chan struct{}
	open     chan struct{}

	mu     sync.Mutex
	writes [][]byte
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	first := len(c.writes) == 0
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	if first {
		close(c.entered)
		<-c.open
	}
	return len(p), nil
}

func (c *gatedConn) pieces() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.writes)
}

func (c *gatedConn) SetWriteDeadline(time.Time) error { return nil }
func (c *gatedConn) Close() error                     { return nil }

// TestChatOvertakesBulk: with one bulk frame being written and five more
// queued, a chat frame queued last is written right after the one in
// progress, in a write of its own (not held back to fill a batch), and the
// bulk frames keep their order.
func TestChatOvertakesBulk(t *testing.T) {
	conn := &gatedConn{entered: make(chan struct{}), open: make(chan struct{})}
	cfg := DefaultConfig()
	n := &Node{cfg: cfg, epoch: time.Now(), frames: newFramePool(framePoolSize)}
	p := &peer{n: n, conn: conn, bw: bufio.NewWriterSize(conn, bufSize),
		ctrl: make(chan []byte, cfg.ControlQueue), bulk: make(chan []byte, cfg.BulkQueue),
		closed: make(chan struct{}), writerDone: make(chan struct{})}
	bulk := func(i byte) []byte {
		return encodeFrame(frameBytes, bytes.Repeat([]byte{i}, 1<<20))
	}
	ctx := context.Background()
	if err := p.send(ctx, p.bulk, bulk(0)); err != nil {
		t.Fatal(err)
	}
	go p.writeLoop()
	defer func() { p.close(nil); <-p.writerDone }()
	<-conn.entered // bulk 0 is being written; the socket is full
	for i := byte(1); i <= 5; i++ {
		if err := p.send(ctx, p.bulk, bulk(i)); err != nil {
			t.Fatal(err)
		}
	}
	payload, err := encodeChat(Chat{Seq: 1, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	chat := encodeFrame(frameChat, payload)
	if err := p.send(ctx, p.ctrl, chat); err != nil {
		t.Fatal(err)
	}
	close(conn.open)
	want := 6*len(bulk(0)) + len(chat)
	deadline := time.Now().Add(10 * time.Second)
	for total(conn.pieces()) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d bytes written", total(conn.pieces()), want)
		}
		time.Sleep(time.Millisecond)
	}
	pieces := conn.pieces()
	if !slices.ContainsFunc(pieces, func(w []byte) bool { return bytes.Equal(w, chat) }) {
		t.Errorf("the chat frame was not written on its own")
	}
	var order []string
	r := bytes.NewReader(bytes.Join(pieces, nil))
	for r.Len() > 0 {
		f, err := readFrame(r, 2<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == frameChat {
			order = append(order, "chat")
		} else {
			order = append(order, string('0'+f.Payload[0]))
		}
	}
	if wantOrder := []string{"0", "chat", "1", "2", "3", "4", "5"}; !slices.Equal(order, wantOrder) {
		t.Errorf("frames written in order %v, want %v", order, wantOrder)
	}
}

func total(pieces [][]byte) int {
	n := 0
	for _, p := range pieces {
		n += len(p)
	}
	return n
}
