package ui

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	meshsync "github.com/meshfs/meshfs/sync"
)

// Source is what the page shows and the one thing it does: the engine.
type Source interface {
	// Status is the snapshot 'meshfs status --json' prints.
	Status() meshsync.Status
	// Say sends one chat line from the local user, as the chat file does.
	Say(text string) error
	// ChatLogPath is the rendered chat log, a file that only grows.
	ChatLogPath() string
}

// Config configures the page's server.
type Config struct {
	// Addr is HOST:PORT to listen on; PORT 0 picks a free port. HOST must be
	// an IP address or "localhost".
	Addr string
	// AllowRemote permits a HOST that is not loopback; New logs a warning.
	AllowRemote bool
	// Source is the engine the page reads.
	Source Source
	// InboxDir is the folder files are served from: the tree's inbox/.
	InboxDir string
	// Tick is how often an event stream looks for changes (default 1s).
	Tick time.Duration
	// ChatBacklog is how many bytes of the chat log's end a new stream
	// sends first (default 64 KiB).
	ChatBacklog int64
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults New fills in for zero fields.
func DefaultConfig() Config {
	return Config{Tick: time.Second, ChatBacklog: 64 << 10}
}

// Timeouts of the HTTP server. An event stream extends its write deadline
// before each write (events.go), so writeTimeout bounds one write, not the
// stream.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 5 * time.Second
)

// ErrNotLoopback is returned by New for a non-loopback Addr without
// AllowRemote.
var ErrNotLoopback = errors.New("not a loopback address")

//go:embed assets
var assets embed.FS

// Server serves the page until Close.
type Server struct {
	// Immutable after New.
	cfg     Config
	log     *slog.Logger
	token   string // in the URL printed, traded for the session cookie
	session string // the session cookie's value
	cookie  string // the session cookie's name, distinct per port
	guard   guard
	srv     *http.Server
	ln      net.Listener

	ctx    context.Context // cancelled by Close: ends every event stream
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// CheckAddr reports whether New would accept addr: HOST:PORT with an IP
// address or localhost, loopback unless allowRemote.
func CheckAddr(addr string, allowRemote bool) error {
	_, err := bindIP(addr, allowRemote)
	return err
}

func bindIP(addr string, allowRemote bool) (net.IP, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("page address %q: want HOST:PORT", addr)
	}
	ip, err := hostIP(host)
	if err != nil {
		return nil, fmt.Errorf("page address %q: %w", addr, err)
	}
	if !ip.IsLoopback() && !allowRemote {
		return nil, fmt.Errorf("page address %q: %w", addr, ErrNotLoopback)
	}
	return ip, nil
}

// New listens on cfg.Addr and starts serving.
func New(cfg Config) (*Server, error) {
	cfg = withDefaults(cfg)
	ip, err := bindIP(cfg.Addr, cfg.AllowRemote)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), portOf(cfg.Addr)))
	if err != nil {
		return nil, fmt.Errorf("page: %w", err)
	}
	s, err := newServer(cfg, ln, ip)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if !ip.IsLoopback() {
		s.log.Warn("the page is served beyond this machine", "addr", ln.Addr().String(),
			"fix", "anyone who can reach this address and learns the token may use the page; prefer a loopback address and an SSH tunnel")
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("the page stopped", "err", err, "fix", "restart the mount to serve the page again")
		}
	}()
	return s, nil
}

func withDefaults(cfg Config) Config {
	def := DefaultConfig()
	if cfg.Tick <= 0 {
		cfg.Tick = def.Tick
	}
	if cfg.ChatBacklog <= 0 {
		cfg.ChatBacklog = def.ChatBacklog
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// hostIP resolves the HOST of Addr without DNS: an IP, or "localhost".
func hostIP(host string) (net.IP, error) {
	if host == "localhost" {
		return net.IPv4(127, 0, 0, 1), nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, errors.New("HOST must be an IP address or localhost")
	}
	return ip, nil
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func newServer(cfg Config, ln net.Listener, ip net.IP) (*Server, error) {
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	session, err := newToken()
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	s := &Server{cfg: cfg, log: cfg.Logger, token: token, session: session, ln: ln,
		// Browsers share cookies between the ports of a host: the port in
		// the name keeps two mounts' sessions apart.
		cookie: "meshfs_ui_" + strconv.Itoa(port),
		guard:  newGuard(ip, port)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// newToken returns 256 random bits, URL-safe.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("page token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// URL is the address to open, with the token: whoever holds it may use the
// page until the mount stops.
func (s *Server) URL() string {
	u := url.URL{Scheme: "http", Host: s.guard.canonical, Path: "/", RawQuery: "token=" + s.token}
	return u.String()
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close ends every event stream, stops the server and waits for it.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err = s.srv.Shutdown(ctx); err != nil {
			err = s.srv.Close()
		}
		s.wg.Wait()
	})
	return err
}
