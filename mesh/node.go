package mesh

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfs/meshfs/internal/safetext"
)

// Config configures a Node. Zero values are replaced by DefaultConfig's.
type Config struct {
	// StateDir is the node's private folder; mesh keeps its files in StateDir/mesh.
	StateDir string
	// Name is the display name put in this node's member certificate when
	// the certificate is issued (mesh creation or join); later runs keep the
	// certificate's name. Default "node-" + short ID.
	Name string
	// Listen is the TCP address to listen on: "host:port", ":port" or "port".
	Listen string
	// Listener, if set, is used instead of listening on Listen: Start
	// accepts on it, its Addr is the advertised address (unless Advertise
	// says otherwise), and Close closes it. Nil listens with TCP.
	Listener net.Listener
	// Dial, if set, opens every connection to a member or join address
	// instead of a TCP dial; ctx carries HandshakeTimeout. Connections it
	// returns are not tuned (socket options are TCP's), hole punching is
	// off (it binds local TCP ports) and the address watcher is not
	// started (roam.go). Nil dials with TCP. With Listener it swaps the
	// whole transport: the in-memory simulation (sim_test.go) uses both.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Advertise lists the addresses announced to peers; default the actual
	// listen address (an unspecified host is replaced by each receiver).
	Advertise []string
	// Join lists bootstrap addresses (hints, dialed without an expected ID).
	Join []string
	// Invite is the token used once to join a mesh (only read when not a member).
	Invite string
	// Anchor marks a member with a stable public address: its address
	// record says so, invites list it after the admin, and it accepts
	// joiners and relays their JOIN to the admin (relay.go).
	Anchor bool
	// Release is this build's release version ("v1.2.0", "devel"), at most
	// 64 bytes. It goes to members in HELLO, for display only: 'meshfs
	// doctor' shows which release each member runs. Compatibility is
	// decided by ProtocolVersion alone.
	Release string
	// Handler receives events; nil drops them.
	Handler Handler
	// Logger; nil discards.
	Logger *slog.Logger

	// MaxBytes caps a BYTES payload (default 2 MiB).
	MaxBytes int
	// MaxPeers caps live member connections (default 128).
	MaxPeers int
	// MaxPending caps connections still in the handshake (default 64) and
	// MaxPendingPerIP those from one source IP (default 4).
	MaxPending, MaxPendingPerIP int
	// MaxWaiting caps accepted connections waiting for a handshake slot
	// (default 256), MaxWaitingPerIP those from one source IP (default
	// 64). Each waits at most HandshakeTimeout; past either cap a new
	// connection is closed at once.
	MaxWaiting, MaxWaitingPerIP int
	// ControlQueue and BulkQueue are the per-connection queue lengths in frames (256, 8).
	ControlQueue, BulkQueue int
	// MaxDials caps concurrent outgoing dials (default 8).
	MaxDials int
	// JoinFailLimit caps failed invite attempts per source IP per minute (default 10).
	JoinFailLimit int
	// JoinRetryFor is how long a joiner keeps trying when the network
	// fails (the node it joins through is down, starting or busy) before
	// Start gives up (default 10 min; a refused invite ends it at once).
	JoinRetryFor time.Duration
	// ChatRate caps chat messages read per second from one peer (default
	// 20) after a burst of ChatBurst (default 1000, a whole history replay);
	// a faster sender is slowed (its connection is not read), never dropped.
	ChatRate, ChatBurst int

	// HandshakeTimeout bounds TLS plus HELLO, and a joiner's JOIN (10 s).
	HandshakeTimeout time.Duration
	// FrameTimeout bounds reading one frame once its header arrived (60 s).
	FrameTimeout time.Duration
	// WriteTimeout bounds every write; a peer that does not read is dropped (30 s).
	WriteTimeout time.Duration
	// PingInterval is how often each connection sends PING (10 s); with
	// many connections it stretches so the node sends at most pingBudget
	// PINGs a second.
	PingInterval time.Duration
	// DeadAfter closes a connection that sent nothing for this long (3 × PingInterval),
	// stretched as much as the connection's ping interval is.
	DeadAfter time.Duration
	// DiscoveryInterval is how often PEERS_REQ goes to discoveryFanout peers (30 s).
	DiscoveryInterval time.Duration
	// RedialMin and RedialMax bound the per-member redial backoff (1 s, 60 s).
	RedialMin, RedialMax time.Duration
	// FullMeshUpTo is the largest mesh (members, this node included) in
	// which every member connects to every other (24). Above it the mesh
	// is partial (overlay.go): a member dials until it has ActiveView
	// connections (8) and keeps up to 2 × ActiveView.
	FullMeshUpTo, ActiveView int
}

// DefaultConfig returns the defaults of every limit and timeout.
func DefaultConfig() Config {
	return Config{
		Listen:            ":0",
		MaxBytes:          2 << 20,
		MaxPeers:          128,
		MaxPending:        64,
		MaxPendingPerIP:   4,
		MaxWaiting:        256,
		MaxWaitingPerIP:   64,
		ControlQueue:      256,
		BulkQueue:         8,
		MaxDials:          8,
		JoinFailLimit:     10,
		ChatRate:          20,
		ChatBurst:         1000,
		HandshakeTimeout:  10 * time.Second,
		JoinRetryFor:      10 * time.Minute,
		FrameTimeout:      60 * time.Second,
		WriteTimeout:      30 * time.Second,
		PingInterval:      10 * time.Second,
		DiscoveryInterval: 30 * time.Second,
		RedialMin:         time.Second,
		RedialMax:         60 * time.Second,
		FullMeshUpTo:      24,
		ActiveView:        8,
	}
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDefault(&c.Listen, d.Listen)
	for _, f := range []struct {
		v *int
		d int
	}{{&c.MaxBytes, d.MaxBytes}, {&c.MaxPeers, d.MaxPeers},
		{&c.MaxPending, d.MaxPending}, {&c.MaxPendingPerIP, d.MaxPendingPerIP},
		{&c.MaxWaiting, d.MaxWaiting}, {&c.MaxWaitingPerIP, d.MaxWaitingPerIP},
		{&c.ControlQueue, d.ControlQueue}, {&c.BulkQueue, d.BulkQueue}, {&c.MaxDials, d.MaxDials},
		{&c.JoinFailLimit, d.JoinFailLimit}, {&c.ChatRate, d.ChatRate}, {&c.ChatBurst, d.ChatBurst},
		{&c.FullMeshUpTo, d.FullMeshUpTo}, {&c.ActiveView, d.ActiveView}} {
		setDefault(f.v, f.d)
	}
	for _, f := range []struct {
		v *time.Duration
		d time.Duration
	}{{&c.HandshakeTimeout, d.HandshakeTimeout},
		{&c.FrameTimeout, d.FrameTimeout}, {&c.WriteTimeout, d.WriteTimeout}, {&c.PingInterval, d.PingInterval},
		{&c.DiscoveryInterval, d.DiscoveryInterval}, {&c.RedialMin, d.RedialMin}, {&c.RedialMax, d.RedialMax},
		{&c.JoinRetryFor, d.JoinRetryFor}} {
		setDefault(f.v, f.d)
	}
	setDefault(&c.DeadAfter, 3*c.PingInterval)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if !strings.Contains(c.Listen, ":") {
		c.Listen = ":" + c.Listen // a bare port
	}
	return c
}

func setDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Node is one member of a mesh: it listens, dials other members, keeps one
// authenticated connection per member and delivers events to its Handler.
type Node struct {
	// Immutable after New.
	cfg     Config
	log     *slog.Logger
	dir     string // StateDir/mesh
	self    PeerID
	session uint64
	epoch   time.Time // base of the monotonic clock carried in PING
	created bool
	invites *inviteStore // admin only (nil otherwise); has its own lock
	joinTok *token       // parsed Config.Invite when not a member
	frames  framePool    // SendBulk's frames; safe for concurrent use
	ioBufs  framePool    // batchConn buffers; safe for concurrent use

	// Roaming (roam.go): set by New; tests replace the first three
	// before Start.
	localIPs     func() (ipSet, error) // this machine's addresses
	replaceAfter time.Duration         // register: a same-session connection this old is replaced
	probeWait    time.Duration         // probe: how long a probed connection has to answer
	probing      atomic.Bool           // a probe goroutine runs

	// Set by Start, then immutable.
	ln     net.Listener
	udp    *udpPath // the UDP socket for STUN and QUIC (udp.go); nil without
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // wakes the dial loop
	sem    chan struct{} // concurrent dials

	mu      sync.Mutex
	ident   *identity // membership set once (New or Start)
	revs    *revocationList
	peers   map[PeerID]*peer      // live connections, one per member
	roster  map[PeerID]*member    // known members
	dials   map[string]*dialState // redial state by target key
	pending map[net.Conn]string   // connections in the handshake → source IP
	perIP   map[string]int
	queue   []*waiter      // accepted connections waiting for a handshake slot, oldest first
	waiting map[string]int // queue's connections by source IP
	mapped  string         // the router's forwarded address of our port (SetMapped), "" for none
	ownRec  *addrRecord    // this node's newest signed address record (refreshRecord)
	// Joins this anchor relays to the admin, by request ID (relay.go),
	// and joins the admin serves for anchors now.
	relays   map[uint64]*relayWait
	relayID  uint64
	relaying int
	// Hole punching (punch.go): members being punched to, introductions
	// asked for and pairs introduced lately (rate limits).
	punching   map[PeerID]bool
	asked      map[PeerID]time.Time
	introduced map[[2]PeerID]time.Time
	noPunch    bool // tests: ignore PUNCH, as a NAT that defeats it would
	// tests: learn the outside UDP address from members on loopback too
	stunLoopback bool
	noRecord     bool // tests: sign no address record, as a node with no dialable address

	// Roaming (roam.go), guarded by mu.
	lastIPs ipSet              // this machine's addresses at the last change (addrsChanged)
	dialCtx context.Context    // dials started now; redialNow cancels it on an address change
	dialEnd context.CancelFunc // cancels dialCtx
	watch   io.Closer          // the address watcher's socket, closed by Close; nil when polling

	rosterDirty  chan struct{} // a lazy save of the member list is due (rosterLoop)
	rosterUrgent chan struct{} // a save is due now: a new member or address (rosterNow)
	started      bool
	closed       bool
	saveMu       sync.Mutex // serialises roster writes (taken before mu)
	revMu        sync.Mutex // serialises revocation updates (taken before mu)
	recMu        sync.Mutex // serialises checks of new address records (taken before mu)
}

// New loads or creates the node's identity. It creates a new mesh (and
// makes this node its admin) when the node is not a member and Join is
// empty. It does no network I/O.
func New(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if cfg.StateDir == "" {
		return nil, errors.New("new mesh node: no state dir")
	}
	if len(cfg.Release) > maxReleaseBytes {
		return nil, fmt.Errorf("new mesh node: release %q over %d bytes", cfg.Release, maxReleaseBytes)
	}
	dir := filepath.Join(cfg.StateDir, "mesh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("new mesh node: %w", err)
	}
	os.Chmod(dir, 0o700)
	ident, err := loadIdentity(dir)
	if err != nil {
		return nil, fmt.Errorf("new mesh node: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, dir: dir, self: ident.id, ident: ident, epoch: time.Now(), frames: newFramePool(framePoolSize), ioBufs: newFramePool(ioBufPoolSize),
		session: randomU64(), peers: map[PeerID]*peer{}, roster: map[PeerID]*member{},
		dials: map[string]*dialState{}, pending: map[net.Conn]string{}, perIP: map[string]int{},
		waiting: map[string]int{}, punching: map[PeerID]bool{}, asked: map[PeerID]time.Time{},
		introduced: map[[2]PeerID]time.Time{}, relays: map[uint64]*relayWait{}, rosterDirty: make(chan struct{}, 1), rosterUrgent: make(chan struct{}, 1),
		revs: &revocationList{}, kick: make(chan struct{}, 1), sem: make(chan struct{}, cfg.MaxDials),
		localIPs: interfaceIPs, replaceAfter: replaceAfter, probeWait: probeWait}
	if err := n.initMembership(); err != nil {
		return nil, fmt.Errorf("new mesh node: %w", err)
	}
	return n, nil
}

// initMembership creates a mesh, loads member state, or checks the invite.
func (n *Node) initMembership() error {
	if !n.ident.member() && len(n.cfg.Join) == 0 {
		if err := n.ident.createMesh(n.dir, n.ownName()); err != nil {
			return fmt.Errorf("create mesh: %w", err)
		}
		n.created = true
		n.log.Info("mesh created", "mesh", meshID(n.ident.ca), "id", n.self)
	}
	if !n.ident.member() {
		if n.cfg.Invite == "" {
			return ErrNeedInvite
		}
		tok, err := parseToken(n.cfg.Invite)
		if err != nil {
			return err
		}
		n.joinTok = tok
		return nil
	}
	return n.loadMemberState()
}

// loadMemberState reads the revocation list, roster and (admin) invites.
func (n *Node) loadMemberState() error {
	revs, err := loadRevocations(n.dir, n.ident.ca.PublicKey.(ed25519.PublicKey))
	if err != nil {
		return err
	}
	n.revs = revs
	if n.roster, err = loadRoster(n.dir, n.ident.caPool, revs); err != nil {
		return err
	}
	delete(n.roster, n.self)
	if n.ident.admin() {
		n.invites, err = loadInvites(filepath.Join(n.dir, fileInvites), n.cfg.JoinFailLimit)
	}
	return err
}

// ownName is the sanitised configured name, or the default.
func (n *Node) ownName() string {
	if name := safetext.Name(n.cfg.Name); name != "" {
		return name
	}
	return defaultName(n.self)
}

// Start listens, redeems the invite if this node is not a member yet, and
// starts the accept, dial and discovery loops. ctx bounds the start only;
// Close stops the loops.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.started || n.closed {
		n.mu.Unlock()
		return fmt.Errorf("start mesh node: %w", ErrClosed)
	}
	n.started = true
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.dialCtx, n.dialEnd = context.WithCancel(n.ctx)
	n.mu.Unlock()
	ln, err := n.listen()
	if err != nil {
		return fmt.Errorf("start mesh node: %w", err)
	}
	n.ln = ln
	if n.joinTok != nil {
		if err := n.redeem(ctx); err != nil {
			ln.Close()
			return err
		}
	}
	if n.cfg.Listener == nil {
		n.startUDP(ln)
	}
	n.refreshRecord()
	n.log.Info("mesh node started", "id", n.self, "name", n.Name(), "addr", ln.Addr().String(), "mesh", n.MeshID())
	n.wg.Add(3)
	go n.acceptLoop()
	go n.dialLoop()
	go n.rosterLoop()
	ips, _ := n.localIPs()
	n.mu.Lock()
	n.lastIPs = ips
	n.mu.Unlock()
	// The watcher acts on this machine's interface addresses, which
	// connections of a custom Dial do not use: it would probe them and
	// redial everything on every route change of the host (in the
	// simulation, a thousand nodes at once) for nothing. Not starting it
	// is simpler than teaching each of its rules to skip them.
	if n.cfg.Dial == nil {
		n.startWatch()
	}
	return nil
}

// listen returns Config.Listener or a TCP listener on Config.Listen.
func (n *Node) listen() (net.Listener, error) {
	if n.cfg.Listener != nil {
		return n.cfg.Listener, nil
	}
	return net.Listen("tcp", n.cfg.Listen)
}

// dialConn opens a connection to addr with Config.Dial, bounded by d's
// timeout, or over TCP with d.
func (n *Node) dialConn(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
	if n.cfg.Dial == nil {
		return d.DialContext(ctx, "tcp", addr)
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	return n.cfg.Dial(ctx, addr)
}

// Close stops everything and waits for every goroutine. It is idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	started := n.started
	peers := slices.Collect(maps.Values(n.peers))
	for c := range n.pending {
		c.Close()
	}
	watch := n.watch
	n.mu.Unlock()
	if !started {
		return nil
	}
	n.cancel()
	if n.ln != nil {
		n.ln.Close()
	}
	if watch != nil {
		watch.Close() // stops watchNetlink's read
	}
	for _, p := range peers {
		p.bye(reasonShutdown, nil)
	}
	n.wg.Wait()
	n.closeUDP() // after the peers' BYE: QUIC connections end with the transport
	n.saveRoster()
	return nil
}

// ID returns this node's ID.
func (n *Node) ID() PeerID { return n.self }

// Name returns the display name from this node's member certificate (or
// the configured name before it has one).
func (n *Node) Name() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ident.cert != nil {
		if name := safetext.Name(n.ident.cert.Subject.CommonName); name != "" {
			return name
		}
	}
	return n.ownName()
}

// Addr returns the actual listen address (nil before Start).
func (n *Node) Addr() net.Addr {
	if n.ln == nil {
		return nil
	}
	return n.ln.Addr()
}

// MeshID returns the short fingerprint of the mesh CA ("" before joining).
func (n *Node) MeshID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ident.ca == nil {
		return ""
	}
	return meshID(n.ident.ca)
}

// IsAdmin reports whether this node holds the mesh CA key.
func (n *Node) IsAdmin() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ident.admin()
}

// Created reports whether New created a new mesh in this run.
func (n *Node) Created() bool { return n.created }

// Peers returns every known, non-revoked member but this node, sorted by
// name then ID, with live details for connected ones.
func (n *Node) Peers() []PeerInfo {
	n.mu.Lock()
	out := make([]PeerInfo, 0, len(n.roster))
	for id, m := range n.roster {
		if id == n.self || n.revs.has(id) || m.Cert == nil && n.peers[id] == nil {
			continue // only members whose certificate this node verified
		}
		info := m.info()
		if p := n.peers[id]; p != nil {
			sent, recv := info.Sent, info.Received
			info = p.info()
			info.Sent += sent
			info.Received += recv
			info.Anchor = m.Record.anchor()
		} else if info.Through = n.throughLocked(id); len(info.Through) > 0 {
			info.Link = LinkRelayed
		}
		out = append(out, info)
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b PeerInfo) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID.String(), b.ID.String()))
	})
	return out
}

// SendChat queues a chat message to one connected member.
func (n *Node) SendChat(ctx context.Context, to PeerID, c Chat) error {
	payload, err := encodeChat(Chat{Seq: c.Seq, Time: c.Time, Text: safetext.Text(c.Text)})
	if err != nil {
		return err
	}
	return n.sendTo(ctx, to, false, encodeFrame(frameChat, payload))
}

// BroadcastChat queues a chat message to every connected member.
func (n *Node) BroadcastChat(ctx context.Context, c Chat) error {
	payload, err := encodeChat(Chat{Seq: c.Seq, Time: c.Time, Text: safetext.Text(c.Text)})
	if err != nil {
		return err
	}
	return n.broadcast(ctx, encodeFrame(frameChat, payload))
}

// SendBytes queues application bytes on the control queue (priority).
func (n *Node) SendBytes(ctx context.Context, to PeerID, data []byte) error {
	if err := n.checkBytes(data); err != nil {
		return err
	}
	return n.sendTo(ctx, to, false, encodeFrame(frameBytes, data))
}

// SendBulk queues application bytes on the bulk queue (after control
// frames). data is copied: the caller may reuse it as soon as SendBulk
// returns.
func (n *Node) SendBulk(ctx context.Context, to PeerID, data []byte) error {
	if err := n.checkBytes(data); err != nil {
		return err
	}
	f := appendFrame(n.frames.get(frameHeaderLen+len(data)), frameBytes, data)
	err := n.sendTo(ctx, to, true, f)
	if err != nil {
		n.frames.put(f)
	}
	return err
}

// BroadcastBytes queues application bytes to every connected member.
func (n *Node) BroadcastBytes(ctx context.Context, data []byte) error {
	if err := n.checkBytes(data); err != nil {
		return err
	}
	return n.broadcast(ctx, encodeFrame(frameBytes, data))
}

func (n *Node) checkBytes(data []byte) error {
	if len(data) > n.cfg.MaxBytes {
		return fmt.Errorf("bytes of %d (max %d): %w", len(data), n.cfg.MaxBytes, ErrTooLarge)
	}
	return nil
}

// sendTo queues one encoded frame to one connected member. The frame is
// shared, never modified after encoding, so broadcasts reuse it.
func (n *Node) sendTo(ctx context.Context, to PeerID, bulk bool, f []byte) error {
	n.mu.Lock()
	p, closed := n.peers[to], n.closed
	n.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if p == nil {
		return fmt.Errorf("send to %s: %w", to.Short(), ErrUnknownPeer)
	}
	q := p.ctrl
	if bulk {
		q = p.bulk
	}
	return p.send(ctx, q, f)
}

// broadcast queues f to every connected member; a member whose connection
// closes meanwhile is skipped (it resumes on reconnect).
func (n *Node) broadcast(ctx context.Context, f []byte) error {
	n.mu.Lock()
	peers, closed := slices.Collect(maps.Values(n.peers)), n.closed
	n.mu.Unlock()
	if closed {
		return ErrClosed
	}
	for _, p := range peers {
		if err := p.send(ctx, p.ctrl, f); err != nil && !errors.Is(err, ErrUnknownPeer) {
			return err
		}
	}
	return nil
}

// emit delivers an event; callers hold no lock.
func (n *Node) emit(e Event) {
	if n.cfg.Handler != nil {
		n.cfg.Handler.HandleEvent(e)
	}
}

// mono is the monotonic clock carried in PING (nanoseconds since New, > 0).
func (n *Node) mono() int64 { return int64(time.Since(n.epoch)) + 1 }

// tlsCert is our member certificate chain.
func (n *Node) tlsCert() tls.Certificate {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ident.tlsCert()
}

// hello is the HELLO this node sends on a connection from or to remote.
func (n *Node) hello(remote net.Addr) hello {
	n.mu.Lock()
	v := n.revs.Version
	n.mu.Unlock()
	return hello{Version: protoVersion, Name: n.Name(), Addrs: n.advertised(), RevVersion: v, Session: n.session,
		Release: n.cfg.Release, Observed: observedAddr(remote)}
}

// observedAddr is remote as HELLO carries it: "" for a connection that
// has no host:port (net.Pipe in tests).
func observedAddr(remote net.Addr) string {
	if remote == nil || validateAddr(remote.String()) != nil {
		return ""
	}
	return remote.String()
}

// advertised returns the addresses announced in HELLO and PEERS: the
// router's mapped port first (it is the one that works from outside),
// then the configured or actual listen addresses.
func (n *Node) advertised() []string {
	n.mu.Lock()
	mapped := n.mapped
	n.mu.Unlock()
	var out []string
	if mapped != "" {
		out = append(out, mapped)
	}
	if len(n.cfg.Advertise) > 0 {
		out = append(out, n.cfg.Advertise...)
	} else if n.ln != nil {
		out = append(out, n.ln.Addr().String())
	}
	return out[:min(len(out), maxAddrs)]
}

func randomU64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}
