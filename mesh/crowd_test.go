package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// TestCrowdJoinsFromOneAddress: 40 members join at once through the admin,
// all from 127.0.0.1, as an office behind one NAT does at 9:00. The
// handshakes over the per-address cap wait for a slot instead of being
// reset, so every Start succeeds and the mesh becomes full. (row 6 of the
// bad-input table still holds a flood off.)
func TestCrowdJoinsFromOneAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("41 nodes: not in -short")
	}
	const crowd = 40
	cfg := testConfig(t, "admin")
	cfg.HandshakeTimeout = DefaultConfig().HandshakeTimeout   // how long one waits for a slot
	cfg.DiscoveryInterval = DefaultConfig().DiscoveryInterval // 41 nodes asking each other every second is not what runs
	cfg.FullMeshUpTo = crowd + 1                              // the joins are under test, not the partial mesh
	admin := startNode(t, cfg)
	inv, err := admin.Invite(time.Minute, crowd)
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*Node, crowd)
	errs := make([]error, crowd)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range nodes {
		cfg := testConfig(t, fmt.Sprint("m", i))
		cfg.Join = []string{admin.Addr().String()}
		cfg.Invite = inv.Token
		cfg.HandshakeTimeout = DefaultConfig().HandshakeTimeout
		cfg.DiscoveryInterval = DefaultConfig().DiscoveryInterval
		cfg.FullMeshUpTo = crowd + 1
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes[i] = n
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.Start(t.Context())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("m%d did not join: %v", i, err)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("%d joined in %v", crowd, time.Since(start))
	all := append([]*Node{admin}, nodes...)
	// A user waits 60 s at most. The race detector makes every handshake
	// several times slower, and make test runs the integration tests'
	// processes at the same time on two cores: there, allow three times that.
	within := 60 * time.Second
	if raceEnabled {
		within *= 3
	}
	fullMeshWithin(t, within, all...)
	t.Logf("full mesh of %d in %v", len(all), time.Since(start))
}

// TestJoinRetriesUntilTheAdminIsUp: a joiner started while the node it
// joins through is down says so and tries again, and gets in once the
// node is back, instead of exiting.
func TestJoinRetriesUntilTheAdminIsUp(t *testing.T) {
	cfg := testConfig(t, "admin")
	first := startNode(t, cfg)
	addr := first.Addr().String()
	inv, err := first.Invite(time.Minute, 1)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	jcfg := testConfig(t, "late")
	jcfg.Join, jcfg.Invite = []string{addr}, inv.Token
	retries := &countingHandler{Handler: jcfg.Logger.Handler(), msg: "could not join the mesh yet; trying again", n: new(atomic.Int32)}
	jcfg.Logger = slog.New(retries)
	joiner, err := New(jcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { joiner.Close() })
	done := make(chan error, 1)
	go func() { done <- joiner.Start(t.Context()) }()
	if err := testutil.WaitFor(10*time.Second, func() error {
		if retries.n.Load() == 0 {
			return errors.New("no retry logged")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cfg.Listen = addr // the same state and address: the invite is still open
	startNode(t, cfg)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Start after the admin came back = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the joiner did not get in within 30 s of the admin coming back")
	}
}

// countingHandler counts the records whose message is msg.
type countingHandler struct {
	slog.Handler
	msg string
	n   *atomic.Int32
}

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingHandler{Handler: h.Handler.WithAttrs(as), msg: h.msg, n: h.n}
}

func (h *countingHandler) WithGroup(g string) slog.Handler {
	return &countingHandler{Handler: h.Handler.WithGroup(g), msg: h.msg, n: h.n}
}
