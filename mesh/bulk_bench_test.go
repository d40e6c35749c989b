package mesh

import (
	"context"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// countBytes is a Handler that counts BYTES payload bytes.
type countBytes struct{ n chan int }

func (c countBytes) HandleEvent(e Event) {
	if b, ok := e.(BytesReceived); ok {
		c.n <- len(b.Data)
	}
}

// BenchmarkBulkThroughput: 1 MiB BYTES frames from one member to another
// over TLS on loopback, as file chunks travel; the mesh's share of a
// transfer's cost.
func BenchmarkBulkThroughput(b *testing.B) {
	t := &testing.T{}
	_ = t
	admin := benchNode(b, "admin", nil)
	got := countBytes{n: make(chan int, 64)}
	cfg := benchConfig(b, "bob")
	inv, err := admin.Invite(time.Minute, 1)
	if err != nil {
		b.Fatal(err)
	}
	cfg.Join, cfg.Invite, cfg.Handler = []string{admin.Addr().String()}, inv.Token, got
	bob := benchNode(b, "bob", &cfg)
	if err := testutil.WaitFor(10*time.Second, func() error { return connectedTo(admin, bob.ID()) }); err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	go func() {
		for range b.N {
			if err := admin.SendBulk(context.Background(), bob.ID(), chunk); err != nil {
				return
			}
		}
	}()
	for range b.N {
		select {
		case <-got.n:
		case <-time.After(10 * time.Second):
			b.Fatal("bulk frame never arrived")
		}
	}
}

func benchConfig(b *testing.B, name string) Config {
	cfg := DefaultConfig()
	cfg.StateDir = b.TempDir()
	cfg.Name = name
	cfg.Listen = "127.0.0.1:0"
	return cfg
}

func benchNode(b *testing.B, name string, cfg *Config) *Node {
	if cfg == nil {
		c := benchConfig(b, name)
		cfg = &c
	}
	n, err := New(*cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	if err := n.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	return n
}
