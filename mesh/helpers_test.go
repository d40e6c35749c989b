package mesh

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Handler that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) HandleEvent(e Event) {
	if b, ok := e.(BytesReceived); ok { // valid only during the call
		b.Data = slices.Clone(b.Data)
		e = b
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) snapshot() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// chats returns the texts received from id, in order.
func (r *recorder) chats() []string {
	var out []string
	for _, e := range r.snapshot() {
		if c, ok := e.(ChatReceived); ok {
			out = append(out, c.Chat.Text)
		}
	}
	return out
}

func (r *recorder) bytes() [][]byte {
	var out [][]byte
	for _, e := range r.snapshot() {
		if b, ok := e.(BytesReceived); ok {
			out = append(out, b.Data)
		}
	}
	return out
}

// testConfig has short timers so that tests are fast.
func testConfig(t *testing.T, name string) Config {
	cfg := DefaultConfig()
	cfg.StateDir = t.TempDir()
	cfg.Name = name
	cfg.Listen = "127.0.0.1:0"
	cfg.Logger = testutil.Logger(t).With("node", name)
	cfg.RedialMin = 20 * time.Millisecond
	cfg.RedialMax = 300 * time.Millisecond
	cfg.HandshakeTimeout = 3 * time.Second
	cfg.DiscoveryInterval = time.Second
	cfg.Handler = &recorder{}
	return cfg
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s) = %v", cfg.Name, err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(t.Context()); err != nil {
		t.Fatalf("Start(%s) = %v", cfg.Name, err)
	}
	return n
}

func rec(n *Node) *recorder { return n.cfg.Handler.(*recorder) }

// joinConfig is a config for a new member invited by admin.
func joinConfig(t *testing.T, admin *Node, name string) Config {
	t.Helper()
	inv, err := admin.Invite(time.Minute, 1)
	if err != nil {
		t.Fatalf("Invite() = %v", err)
	}
	cfg := testConfig(t, name)
	cfg.Join = []string{admin.Addr().String()}
	cfg.Invite = inv.Token
	return cfg
}

// connectedTo reports an error unless n has a live connection to each of ids.
func connectedTo(n *Node, ids ...PeerID) error {
	name := n.Name()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, id := range ids {
		if n.peers[id] == nil {
			return fmt.Errorf("%s not connected to %s", name, id.Short())
		}
	}
	return nil
}

// fullMesh waits until every node is connected to every other, both ends
// of each pair holding the same connection: until then a duplicate may
// still replace one, and frames queued on it are lost with it.
func fullMesh(t *testing.T, nodes ...*Node) {
	t.Helper()
	fullMeshWithin(t, 10*time.Second, nodes...)
}

// fullMeshWithin is fullMesh with a bound of d.
func fullMeshWithin(t *testing.T, d time.Duration, nodes ...*Node) {
	t.Helper()
	err := testutil.WaitFor(d, func() error {
		for _, a := range nodes {
			for _, b := range nodes {
				if a == b {
					continue
				}
				if err := connectedTo(a, b.ID()); err != nil {
					return err
				}
				if pa, pb := livePeer(a, b.ID()), livePeer(b, a.ID()); pa == nil || pb == nil || pa.tiebreak != pb.tiebreak {
					return fmt.Errorf("%s and %s hold different connections", a.Name(), b.Name())
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mkdir(dir string) error { return os.MkdirAll(dir, 0o700) }
