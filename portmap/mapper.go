package portmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Config configures a Mapper. Zero values are replaced by DefaultConfig's.
type Config struct {
	// Port is the local TCP port to forward (required).
	Port uint16
	// Lease is the mapping lifetime asked for (default 1 h); the mapping
	// is renewed at half of what the router grants.
	Lease time.Duration
	// Timeout bounds each network exchange with the router, and the SSDP
	// search (default 3 s).
	Timeout time.Duration
	// Retry is the first wait after a failure (default 1 min), doubling up
	// to 30 min: a router that has no port mapping is asked again rarely.
	Retry time.Duration
	// OnChange is called from the Mapper's goroutine after the mapping
	// came, changed or went; it must not block. Optional.
	OnChange func(Status)
	// Logger; nil discards.
	Logger *slog.Logger

	discover discoverFunc // tests replace the network
}

// DefaultConfig returns the defaults of every timeout.
func DefaultConfig() Config {
	return Config{Lease: time.Hour, Timeout: 3 * time.Second, Retry: time.Minute}
}

// maxRetry caps the wait between failed attempts.
const maxRetry = 30 * time.Minute

// minRenew keeps a router that grants tiny leases from being asked in a loop.
const minRenew = 10 * time.Second

// Status is the mapping as it stands.
type Status struct {
	// External is the router's public address and the mapped port; not
	// valid while there is no mapping.
	External netip.AddrPort
	// Protocol is "nat-pmp" or "upnp" once a router answered.
	Protocol string
	// Expires is when the lease ends unless renewed.
	Expires time.Time
	// Err says why there is no mapping (nil with one, or before the first try).
	Err error
}

// Mapped reports whether a mapping is in place.
func (s Status) Mapped() bool { return s.External.IsValid() }

// Mapper keeps one port mapping alive at the router.
type Mapper struct {
	// Immutable after New.
	cfg Config
	log *slog.Logger

	// Set by Start.
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	status Status

	// Owned by the run goroutine.
	gw       gateway
	failures int // in a row, for the retry backoff and to log a streak once
}

// New checks cfg; it does no network I/O.
func New(cfg Config) (*Mapper, error) {
	if cfg.Port == 0 {
		return nil, errors.New("port mapping: no port")
	}
	d := DefaultConfig()
	cfg.Lease = cmp0(cfg.Lease, d.Lease)
	cfg.Timeout = cmp0(cfg.Timeout, d.Timeout)
	cfg.Retry = cmp0(cfg.Retry, d.Retry)
	if cfg.discover == nil {
		cfg.discover = discover
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Mapper{cfg: cfg, log: log}, nil
}

func cmp0(v, d time.Duration) time.Duration {
	if v <= 0 {
		return d
	}
	return v
}

// Start runs the mapping loop until Close.
func (m *Mapper) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	go m.run(ctx)
}

// Close stops the loop and deletes the mapping (bounded by Timeout). It
// is idempotent and safe before Start.
func (m *Mapper) Close() error {
	if m.cancel == nil {
		return nil
	}
	m.cancel()
	<-m.done
	return nil
}

// Status returns the mapping as it stands.
func (m *Mapper) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

// run maps, then sleeps until the renewal or the retry, until ctx ends.
func (m *Mapper) run(ctx context.Context) {
	defer close(m.done)
	defer m.release()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(m.refresh(ctx))
	}
}

// refresh makes or renews the mapping and returns when to come back.
func (m *Mapper) refresh(ctx context.Context) time.Duration {
	st, err := m.mapOnce(ctx)
	if ctx.Err() != nil {
		return time.Hour // stopping; run returns first
	}
	if err != nil {
		m.gw = nil // find the router again next time: it may have changed
		m.failures++
		m.setStatus(Status{Err: err})
		m.logFailure(err)
		return retryAfter(m.cfg.Retry, m.failures)
	}
	m.failures = 0
	m.setStatus(st)
	return renewAfter(time.Until(st.Expires))
}

// mapOnce finds the router if needed and asks for the mapping.
func (m *Mapper) mapOnce(ctx context.Context) (Status, error) {
	if m.gw == nil {
		gw, err := m.cfg.discover(ctx, m.cfg.Timeout)
		if err != nil {
			return Status{}, err
		}
		m.gw = gw
	}
	tctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	defer cancel()
	ip, err := m.gw.externalIP(tctx)
	if err != nil {
		return Status{}, err
	}
	if !ip.IsValid() || ip.IsUnspecified() {
		return Status{}, fmt.Errorf("%s: the router has no external address yet", m.gw.name())
	}
	port, lease, err := m.gw.add(tctx, m.cfg.Port, m.wantPort(), m.cfg.Lease)
	if err != nil {
		return Status{}, err
	}
	return Status{External: netip.AddrPortFrom(ip, port), Protocol: m.gw.name(),
		Expires: time.Now().Add(lease)}, nil
}

// wantPort is the external port to ask for: the one we hold, or the
// local port, so the address others learn stays the same.
func (m *Mapper) wantPort() uint16 {
	if p := m.Status().External.Port(); p != 0 {
		return p
	}
	return m.cfg.Port
}

// setStatus stores st and tells OnChange when the address changed.
func (m *Mapper) setStatus(st Status) {
	m.mu.Lock()
	old := m.status
	m.status = st
	m.mu.Unlock()
	if old.External != st.External || (old.Err == nil) != (st.Err == nil) {
		if st.Mapped() {
			m.log.Info("port mapped", "external", st.External, "port", m.cfg.Port, "via", st.Protocol)
		}
		if m.cfg.OnChange != nil {
			m.cfg.OnChange(st)
		}
	}
}

// logFailure logs the first failure of a streak as a warning and the
// retries at debug level: a router without port mapping stays so, and
// its reason text changes with every try (source ports).
func (m *Mapper) logFailure(err error) {
	if m.failures > 1 {
		m.log.Debug("still no port mapping", "port", m.cfg.Port, "err", err, "failures", m.failures)
		return
	}
	m.log.Warn("no port mapping", "port", m.cfg.Port, "err", err,
		"fix", "enable UPnP IGD or NAT-PMP on the router, or forward the port to this machine by hand; --port-mapping=off stops asking")
}

// release deletes the mapping at the router, bounded by Timeout. It does
// not call OnChange: the node is stopping, and the address it advertised
// is the one it asks for again when it starts.
func (m *Mapper) release() {
	st := m.Status()
	if !st.Mapped() || m.gw == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.Timeout)
	defer cancel()
	if err := m.gw.remove(ctx, m.cfg.Port, st.External.Port()); err != nil {
		m.log.Warn("port mapping not deleted", "external", st.External, "err", err,
			"fix", "the router drops it when its lease ends; nothing to do")
		return
	}
	m.mu.Lock()
	m.status = Status{Err: errors.New("stopped")}
	m.mu.Unlock()
}

// renewAfter renews at half the remaining lease, as RFC 6886 advises.
func renewAfter(left time.Duration) time.Duration {
	return max(left/2, minRenew)
}

// retryAfter is Retry doubled per failure in a row, capped at maxRetry.
func retryAfter(first time.Duration, failures int) time.Duration {
	d := first
	for i := 1; i < failures && d < maxRetry; i++ {
		d *= 2
	}
	return min(d, maxRetry)
}
