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
	_, done := joinInBackground(t, jcfg)
	cfg.Listen = addr // the same state and address: the invite is still open
	startNode(t, cfg)
	waitJoined(t, done, "the admin came back")
}

// TestJoinAnswerLost: the admin is too slow for the joiner's deadline, so
// the joiner gives up on an answer the admin then writes to a closed
// connection, its one use spent. The joiner tries again and is admitted
// again on the same invite.
func TestJoinAnswerLost(t *testing.T) {
	a := startNode(t, testConfig(t, "admin"))
	jcfg := joinConfig(t, a, "slowpoke")
	jcfg.HandshakeTimeout = 500 * time.Millisecond
	a.invites.mu.Lock() // the admin's redeem waits: it is busy
	locked := true
	defer func() {
		if locked {
			a.invites.mu.Unlock()
		}
	}()
	joiner, done := joinInBackground(t, jcfg)
	a.invites.mu.Unlock()
	locked = false
	waitJoined(t, done, "the admin answered")
	if err := testutil.WaitFor(10*time.Second, func() error { return connectedTo(a, joiner.ID()) }); err != nil {
		t.Fatal(err)
	}
}

// joinInBackground starts a joiner with cfg and returns it once it has
// logged that it tries again, with the channel of Start's result.
func joinInBackground(t *testing.T, cfg Config) (*Node, <-chan error) {
	t.Helper()
	retries := &countingHandler{Handler: cfg.Logger.Handler(), msg: "could not join the mesh yet; trying again", n: new(atomic.Int32)}
	cfg.Logger = slog.New(retries)
	joiner, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { joiner.Close() })
	done := make(chan error, 1)
	go func() { done <- joiner.Start(t.Context()) }()
	if err := testutil.WaitFor(10*time.Second, func() error {
		if retries.n.Load() == 0 {
			return errors.New("the joiner logged no retry")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return joiner, done
}

// waitJoined waits for Start's result, which must be nil, at most 30 s
// after what let the joiner in.
func waitJoined(t *testing.T, done <-chan error, after string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Start after %s = %v", after, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the joiner did not get in within 30 s after %s", after)
	}
}

func TestInviteRedeemSameJoinerTwice(t *testing.T) {
	s := &inviteStore{path: t.TempDir() + "/invites.json", limit: 5, fails: map[string][]time.Time{}}
	now := time.Now()
	id, secret, err := s.add(time.Minute, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	exp, cert := []byte("exporter"), []byte("cert")
	proof := joinProof(joinKey(secret[:]), exp, cert)
	bob, carol := PeerID{1}, PeerID{2}
	for i, tc := range []struct {
		who  PeerID
		want reasonCode
	}{{bob, 0}, {bob, 0}, {carol, reasonInviteUsed}, {bob, 0}} {
		if got := s.redeem("192.0.2.1", id[:], proof, exp, cert, tc.who, now); got != tc.want {
			t.Fatalf("redeem %d by %x = %v, want %v", i, tc.who[:1], got, tc.want)
		}
	}
	if got := s.redeem("192.0.2.1", id[:], proof, exp, cert, bob, now.Add(2*time.Minute)); got != reasonInviteExpired {
		t.Fatalf("redeem after expiry = %v, want %v", got, reasonInviteExpired)
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
