package mesh

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

func TestKeepaliveCodec(t *testing.T) {
	k := keepalive{Mono: 1<<63 + 5, Wall: time.Date(2026, 12, 1, 0, 0, 0, 7, time.UTC).UnixNano()}
	p := encodeKeepalive(k)
	if len(p) != capPing {
		t.Fatalf("encodeKeepalive is %d bytes, want %d", len(p), capPing)
	}
	if got, err := decodeKeepalive(p); err != nil || got != k {
		t.Fatalf("decodeKeepalive(encodeKeepalive(%+v)) = %+v, %v", k, got, err)
	}
	neg := keepalive{Mono: 1, Wall: -42} // a clock before 1970 survives too
	if got, err := decodeKeepalive(encodeKeepalive(neg)); err != nil || got != neg {
		t.Errorf("decodeKeepalive(%+v) = %+v, %v", neg, got, err)
	}
	for _, bad := range [][]byte{nil, p[:8], p[:capPing-1], append(p[:capPing:capPing], 0)} {
		if _, err := decodeKeepalive(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("decodeKeepalive(%d bytes) = %v, want ErrProtocol", len(bad), err)
		}
	}
}

func TestHelloCodec(t *testing.T) {
	h := hello{Version: protoVersion, Name: "alice", Addrs: []string{"10.0.0.1:7000"}, RevVersion: 2, Session: 3, Release: "v1.4.0",
		Observed: "198.51.100.7:40123"}
	p := encodeHello(h)
	got, err := decodeHello(p)
	if err != nil || got.Release != h.Release || got.Name != h.Name || got.Session != h.Session || got.Observed != h.Observed {
		t.Fatalf("decodeHello(encodeHello(%+v)) = %+v, %v", h, got, err)
	}
	long := h
	long.Release = string(make([]byte, maxReleaseBytes+1))
	noPort, ctrl := h, h
	noPort.Observed, ctrl.Observed = "198.51.100.7", "a\x1b[31m:80"
	plain := h
	plain.Observed = ""
	tests := []struct {
		name string
		p    []byte
	}{
		{"truncated observed", p[:len(p)-1]},
		{"no observed", encodeHello(plain)[:len(encodeHello(plain))-2]},
		{"observed without a port", encodeHello(noPort)},
		{"control characters in observed", encodeHello(ctrl)},
		{"extra byte", append(encodeHello(h), 0)},
		{"release over the limit", encodeHello(long)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeHello(tc.p); !errors.Is(err, ErrProtocol) || errors.Is(err, ErrVersion) {
				t.Errorf("decodeHello = %v, want ErrProtocol without ErrVersion", err)
			}
		})
	}
}

// TestHelloOlderLayout: the HELLO of protocol 4 had no release; it must be
// refused for its version, not as malformed, so the message names both.
func TestHelloOlderLayout(t *testing.T) {
	old := encodeHello(hello{Version: 4, Name: "old", Session: 1})
	old = old[:len(old)-2] // protocol 4 ended after the session
	if _, err := decodeHello(old); !errors.Is(err, ErrVersion) {
		t.Fatalf("decodeHello(protocol 4 HELLO) = %v, want ErrVersion", err)
	}
}

func TestEstimateSkew(t *testing.T) {
	base := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		theirs   time.Time
		received time.Time
		rtt      time.Duration
		want     time.Duration
	}{
		// We sent at base, they answered at their base+50ms (the midpoint), it arrived at base+100ms.
		{"in step", base.Add(50 * time.Millisecond), base.Add(100 * time.Millisecond), 100 * time.Millisecond, 0},
		{"ahead", base.Add(time.Minute + 50*time.Millisecond), base.Add(100 * time.Millisecond), 100 * time.Millisecond, time.Minute},
		{"behind", base.Add(-10*time.Minute + 5*time.Millisecond), base.Add(10 * time.Millisecond), 10 * time.Millisecond, -10 * time.Minute},
		{"no round trip", base.Add(2 * time.Second), base, 0, 2 * time.Second},
		// The wire's extremes: 2262 still fits a Duration; 1677 saturates.
		{"latest wall clock", time.Unix(0, math.MaxInt64), base, time.Second, time.Unix(0, math.MaxInt64).Sub(base) + time.Second/2},
		{"earliest wall clock", time.Unix(0, math.MinInt64), base, time.Second, math.MinInt64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := estimateSkew(tc.theirs, tc.received, tc.rtt); got != tc.want {
				t.Errorf("estimateSkew(%v, %v, %v) = %v, want %v", tc.theirs, tc.received, tc.rtt, got, tc.want)
			}
		})
	}
}

// TestPeerReleaseAndSkew: over real TCP, each node learns the other's
// release from HELLO and measures a clock skew near zero (same machine).
func TestPeerReleaseAndSkew(t *testing.T) {
	acfg := testConfig(t, "alice")
	acfg.Release = "v1.0.0"
	acfg.PingInterval = 50 * time.Millisecond
	alice := startNode(t, acfg)
	bcfg := joinConfig(t, alice, "bob")
	bcfg.Release = "v1.1.0-rc1"
	bcfg.PingInterval = 50 * time.Millisecond
	bob := startNode(t, bcfg)
	fullMesh(t, alice, bob)
	check := func(n *Node, want string) error {
		for _, p := range n.Peers() {
			switch {
			case p.Release != want:
				return errors.New(n.Name() + " sees release " + p.Release + ", want " + want)
			case !p.SkewKnown:
				return errors.New(n.Name() + " has no skew yet")
			case p.Skew.Abs() > time.Second:
				t.Fatalf("%s measured skew %v on one machine, want about 0", n.Name(), p.Skew)
			}
		}
		return nil
	}
	err := testutil.WaitFor(10*time.Second, func() error {
		if err := check(alice, "v1.1.0-rc1"); err != nil {
			return err
		}
		return check(bob, "v1.0.0")
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReleaseTooLong(t *testing.T) {
	cfg := testConfig(t, "alice")
	cfg.Release = string(make([]byte, maxReleaseBytes+1))
	if _, err := New(cfg); err == nil {
		t.Fatal("New with a 65-byte release = nil error, want one")
	}
}

// TestPingScaled: with many connections each pings less often, so the
// node sends at most pingBudget PINGs a second, and the read deadline
// stretches with the interval.
func TestPingScaled(t *testing.T) {
	n := &Node{cfg: Config{PingInterval: 10 * time.Second, DeadAfter: 30 * time.Second}, peers: map[PeerID]*peer{}}
	p := &peer{n: n}
	for i := range 80 {
		if i == 10 {
			if got := p.armPing(); got != 10*time.Second {
				t.Errorf("ping interval with 10 connections = %v, want PingInterval", got)
			}
			if got := p.deadAfter(); got != 30*time.Second {
				t.Errorf("deadline with 10 connections = %v, want DeadAfter", got)
			}
		}
		n.peers[PeerID{byte(i)}] = p
	}
	if got, want := p.armPing(), 80*time.Second/pingBudget; got != want {
		t.Errorf("ping interval with 80 connections = %v, want %v", got, want)
	}
	if got, want := p.deadAfter(), 3*80*time.Second/pingBudget; got != want {
		t.Errorf("deadline with 80 connections = %v, want %v", got, want)
	}
}
