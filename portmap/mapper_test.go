package portmap

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeGateway records the calls a Mapper makes; it grants what it is
// asked for, capped at maxLease, or fails with failAdd.
type fakeGateway struct {
	mu       sync.Mutex
	adds     []time.Time
	asked    []uint16
	removed  []uint16
	grant    uint16 // external port granted; 0 grants the one asked for
	maxLease time.Duration
	failAdd  error
}

func (g *fakeGateway) name() string { return "fake" }

func (g *fakeGateway) externalIP(context.Context) (netip.Addr, error) {
	return netip.MustParseAddr("198.20.7.1"), nil
}

func (g *fakeGateway) add(_ context.Context, internal, external uint16, lease time.Duration) (uint16, time.Duration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failAdd != nil {
		return 0, 0, g.failAdd
	}
	g.adds = append(g.adds, time.Now())
	g.asked = append(g.asked, external)
	if g.grant != 0 {
		external = g.grant
	}
	return external, min(lease, g.maxLease), nil
}

func (g *fakeGateway) remove(_ context.Context, internal, external uint16) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.removed = append(g.removed, external)
	return nil
}

func (g *fakeGateway) snapshot() (adds []time.Time, asked, removed []uint16) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]time.Time(nil), g.adds...), append([]uint16(nil), g.asked...), append([]uint16(nil), g.removed...)
}

// lockedBuffer collects a log written by the mapper's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestMapper(t *testing.T, gw gateway, discErr error) *Mapper {
	t.Helper()
	m, err := New(Config{Port: 4100, Lease: time.Hour, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
		discover: func(context.Context, time.Duration) (gateway, error) {
			if discErr != nil {
				return nil, discErr
			}
			return gw, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMapperRenewsAndDeletes: the mapping is made at once, renewed at half
// of the lease the router granted (not the one asked for), and deleted by
// Close.
func TestMapperRenewsAndDeletes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &fakeGateway{maxLease: 20 * time.Minute, grant: 4200}
		m := newTestMapper(t, gw, nil)
		start := time.Now()
		m.Start()
		synctest.Wait()
		st := m.Status()
		if want := netip.MustParseAddrPort("198.20.7.1:4200"); st.External != want || st.Err != nil {
			t.Fatalf("Status() = %v, %v, want %v, nil", st.External, st.Err, want)
		}
		time.Sleep(25 * time.Minute)
		synctest.Wait()
		adds, asked, _ := gw.snapshot()
		want := []time.Duration{0, 10 * time.Minute, 20 * time.Minute}
		if len(adds) != len(want) {
			t.Fatalf("%d mappings in 25 min with a 20 min lease, want %d", len(adds), len(want))
		}
		for i, at := range adds {
			if got := at.Sub(start); got != want[i] {
				t.Errorf("mapping %d at %v, want %v", i, got, want[i])
			}
		}
		if asked[0] != 4100 || asked[1] != 4200 {
			t.Errorf("asked for external ports %v, want 4100 then the granted 4200", asked)
		}
		var changes []Status
		m.cfg.OnChange = func(s Status) { changes = append(changes, s) }
		m.Close()
		if len(changes) != 0 {
			t.Errorf("OnChange got %+v on Close, want nothing: the address is asked for again on the next start", changes)
		}
		if _, _, removed := gw.snapshot(); len(removed) != 1 || removed[0] != 4200 {
			t.Errorf("removed %v after Close, want [4200]", removed)
		}
		if m.Status().Mapped() {
			t.Errorf("Status().Mapped() = true after Close, want false")
		}
	})
}

// TestMapperRetriesWithBackoff: without a router the Mapper says why,
// tries again after 1, 2, 4 ... minutes, and maps once one appears.
func TestMapperRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := &fakeGateway{maxLease: time.Hour, failAdd: errors.New("refused")}
		m := newTestMapper(t, gw, nil)
		var changes []Status
		m.cfg.OnChange = func(s Status) { changes = append(changes, s) }
		var logged lockedBuffer
		m.log = slog.New(slog.NewTextHandler(&logged, nil)) // Info and up: the warnings
		m.Start()
		defer m.Close()
		synctest.Wait()
		if st := m.Status(); st.Mapped() || st.Err == nil {
			t.Fatalf("Status() = %+v with a refusing router, want an error", st)
		}
		time.Sleep(6*time.Minute + time.Second) // tries at 0, 1, 3 min; the next is at 7
		synctest.Wait()
		gw.mu.Lock()
		gw.failAdd = nil
		gw.mu.Unlock()
		if adds, _, _ := gw.snapshot(); len(adds) != 0 {
			t.Fatalf("%d mappings while refused", len(adds))
		}
		if n := strings.Count(logged.String(), "level=WARN"); n != 1 {
			t.Errorf("%d warnings for 3 failed tries, want 1:\n%s", n, logged.String())
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if st := m.Status(); !st.Mapped() {
			t.Fatalf("Status() = %+v a minute after the router accepts, want a mapping", st)
		}
		if len(changes) != 2 || changes[0].Err == nil || !changes[1].Mapped() {
			t.Errorf("OnChange got %+v, want one failure then the mapping", changes)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		failures int
		want     time.Duration
	}{{1, time.Minute}, {2, 2 * time.Minute}, {3, 4 * time.Minute}, {6, 30 * time.Minute}, {60, 30 * time.Minute}}
	for _, tc := range tests {
		if got := retryAfter(time.Minute, tc.failures); got != tc.want {
			t.Errorf("retryAfter(1m, %d) = %v, want %v", tc.failures, got, tc.want)
		}
	}
}

func TestRenewAfter(t *testing.T) {
	tests := []struct{ left, want time.Duration }{
		{time.Hour, 30 * time.Minute}, {2 * time.Minute, time.Minute}, {0, minRenew}, {-time.Second, minRenew},
	}
	for _, tc := range tests {
		if got := renewAfter(tc.left); got != tc.want {
			t.Errorf("renewAfter(%v) = %v, want %v", tc.left, got, tc.want)
		}
	}
}
