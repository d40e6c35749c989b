package sync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshfs/meshfs/chat"
	"github.com/meshfs/meshfs/mesh"
)

// Config configures an Engine. Zero values are replaced by DefaultConfig's.
type Config struct {
	// Root is the tree shown to the user: outbox/, sent/ and inbox/ live
	// here. Required.
	Root string
	// StateDir is the sync package's private folder (STATE/sync): delivery
	// records, chat store and log, folder names. Required.
	StateDir string
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// BlockSize is the block size of outgoing transfers (64 KiB..4 MiB; it
	// must also fit the transport's BYTES cap with a 21-byte header).
	BlockSize int
	// MaxFileSize is the largest file sent or accepted.
	MaxFileSize int64
	// MaxInboundPerPeer caps concurrent inbound transfers from one peer.
	MaxInboundPerPeer int
	// MaxInboundTotal caps concurrent inbound transfers from all peers.
	MaxInboundTotal int
	// MaxOffersInFlight caps OFFERs awaiting completion per peer.
	MaxOffersInFlight int
	// PartialTTL is how long an untouched partial file is kept for resume.
	PartialTTL time.Duration
	// RetryInterval is how long a refused (NOSPACE, BUSY, IO) delivery
	// waits before it is offered again.
	RetryInterval time.Duration
	// MinFreePercent of the inbox filesystem is kept free.
	MinFreePercent float64
	// ChatHistory is how many own chat messages are kept for catch-up.
	ChatHistory int
	// CompletedTTL is how long completed inbound transfer IDs are
	// remembered, so a replayed OFFER gets an ACK instead of a second copy.
	CompletedTTL time.Duration
	// InboundIdle: an inbound transfer with no message for this long gives
	// up its concurrency slot and its file descriptor.
	InboundIdle time.Duration
	// JanitorInterval is how often stale partials are looked for.
	JanitorInterval time.Duration
	// QueueLen is the length of each bounded hand-off channel; a full one
	// applies back-pressure to that peer's connection.
	QueueLen int
	// StreamMinSize: files at least this large are offered at once and
	// hashed while they are sent (stream.go); smaller ones are hashed first.
	StreamMinSize int64
	// OnChange, when not nil, is told each path (relative to Root) that
	// the engine creates, removes or moves in outbox/, sent/ or inbox/, so
	// a frontend can drop what it cached. It must not block.
	OnChange func(rel string)
}

// DefaultConfig returns the default limits (Root and StateDir empty).
func DefaultConfig() Config {
	return Config{
		BlockSize:         1 << 20,
		MaxFileSize:       4 << 30,
		MaxInboundPerPeer: 4,
		MaxInboundTotal:   32,
		MaxOffersInFlight: 4,
		PartialTTL:        24 * time.Hour,
		RetryInterval:     30 * time.Second,
		MinFreePercent:    1,
		ChatHistory:       1000,
		CompletedTTL:      7 * 24 * time.Hour,
		InboundIdle:       2 * time.Minute,
		JanitorInterval:   time.Hour,
		QueueLen:          64,
		StreamMinSize:     4 << 20,
	}
}

// withDefaults fills zero fields from DefaultConfig and checks the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	fill := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	fillDur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&c.BlockSize, d.BlockSize)
	fill(&c.MaxInboundPerPeer, d.MaxInboundPerPeer)
	fill(&c.MaxInboundTotal, d.MaxInboundTotal)
	fill(&c.MaxOffersInFlight, d.MaxOffersInFlight)
	fill(&c.ChatHistory, d.ChatHistory)
	fill(&c.QueueLen, d.QueueLen)
	if c.StreamMinSize <= 0 {
		c.StreamMinSize = d.StreamMinSize
	}
	fillDur(&c.PartialTTL, d.PartialTTL)
	fillDur(&c.RetryInterval, d.RetryInterval)
	fillDur(&c.CompletedTTL, d.CompletedTTL)
	fillDur(&c.InboundIdle, d.InboundIdle)
	fillDur(&c.JanitorInterval, d.JanitorInterval)
	if c.MaxFileSize <= 0 {
		c.MaxFileSize = d.MaxFileSize
	}
	if c.MinFreePercent < 0 {
		c.MinFreePercent = 0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Root == "" || c.StateDir == "":
		return c, errors.New("config: Root and StateDir are required")
	case c.BlockSize < minBlockSize || c.BlockSize > maxBlockSize:
		return c, fmt.Errorf("config: block size %d outside [%d, %d]", c.BlockSize, minBlockSize, maxBlockSize)
	}
	return c, nil
}

// Engine moves files and chat between the members of a mesh. Create it with
// New, give it a transport with Start, stop it with Close.
type Engine struct {
	// Immutable after New.
	cfg                                     Config
	log                                     *slog.Logger
	outboxDir, sentDir, inboxDir, partsDir  string
	outgoingDir, completedPath, foldersPath string
	chat                                    *chat.Store
	ctx                                     context.Context
	cancel                                  context.CancelFunc
	wg                                      sync.WaitGroup

	// Test hooks, set before Start.
	freeSpace func(path string) (free, total uint64, err error)
	errHook   func(error)
	writeAt   func(f *os.File, b []byte, off int64) (int, error) // block writes (fault injection)

	checksumErrors atomic.Uint64 // blocks dropped for a bad hash
	jobs           jobQueue      // work for the outbox loop
	broadcast      chatQueue     // work for the chat broadcaster
	chatIn         chan chatJob  // work for the chat loop

	mu       sync.Mutex // guards everything below
	t        Transport
	started  bool
	closed   bool
	pending  []mesh.Event // events that arrived before Start
	peers    map[mesh.PeerID]*peerConn
	lastConn map[mesh.PeerID]*peerConn // latest peerConn per peer, even stopped
	// chatPending: connected peers whose chat catch-up has not run yet;
	// live lines to them wait for it (broadcast.go).
	chatPending map[mesh.PeerID]pendingPeer
	names       map[mesh.PeerID]string
	out         map[transferID]*outRecord
	outOrder    []*outRecord // by creation; cancelled records are skipped
	outSeq      uint64
	in          map[inKey]*inTransfer
	completed   map[inKey]time.Time
	folders     map[mesh.PeerID]string
}

// maxPendingEvents bounds the events kept from before Start.
const maxPendingEvents = 4096

var _ mesh.Handler = (*Engine)(nil)

// New opens the engine's state and creates Root/{outbox,sent,inbox}. It
// does no network I/O and starts no goroutine.
func New(cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:           cfg,
		log:           cfg.Logger,
		outboxDir:     filepath.Join(cfg.Root, "outbox"),
		sentDir:       filepath.Join(cfg.Root, "sent"),
		inboxDir:      filepath.Join(cfg.Root, "inbox"),
		partsDir:      filepath.Join(cfg.Root, "inbox", partialsName),
		outgoingDir:   filepath.Join(cfg.StateDir, "outgoing"),
		completedPath: filepath.Join(cfg.StateDir, "completed.json"),
		foldersPath:   filepath.Join(cfg.StateDir, "folders.json"),
		peers:         map[mesh.PeerID]*peerConn{},
		lastConn:      map[mesh.PeerID]*peerConn{},
		chatPending:   map[mesh.PeerID]pendingPeer{},
		names:         map[mesh.PeerID]string{},
		out:           map[transferID]*outRecord{},
		in:            map[inKey]*inTransfer{},
		completed:     map[inKey]time.Time{},
		folders:       map[mesh.PeerID]string{},
		chatIn:        make(chan chatJob, cfg.QueueLen),
		freeSpace:     statfsFree,
		writeAt:       (*os.File).WriteAt,
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.jobs.init()
	e.broadcast.init(cfg.ChatHistory)
	if err := e.open(); err != nil {
		e.cancel()
		if e.chat != nil {
			e.chat.Close()
		}
		return nil, err
	}
	return e, nil
}

// open creates the folders and loads every piece of state.
func (e *Engine) open() error {
	for _, d := range []string{e.outboxDir, e.sentDir, e.partsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := os.MkdirAll(e.outgoingDir, 0o700); err != nil {
		return fmt.Errorf("create state: %w", err)
	}
	room, err := chat.Open(e.cfg.StateDir, e.cfg.ChatHistory)
	if err != nil {
		return err
	}
	e.chat = room
	if err := e.loadFolders(); err != nil {
		return err
	}
	if err := e.loadCompleted(); err != nil {
		return err
	}
	if err := e.loadRecords(); err != nil {
		return err
	}
	return e.loadPartials()
}

// Start gives the engine its transport and starts its goroutines: it loads
// connected peers, rescans the outbox and replays events that arrived before
// Start.
func (e *Engine) Start(t Transport) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if e.t != nil {
		e.mu.Unlock()
		return errors.New("start: already started")
	}
	e.t = t
	e.mu.Unlock()

	e.chat.SetSelf(t.ID(), t.Name())
	e.goLoop(e.outboxLoop)
	e.goLoop(e.chatLoop)
	e.goLoop(e.broadcastLoop)
	e.goLoop(e.janitorLoop)
	e.rescanOutbox()
	for _, p := range t.Peers() {
		e.notePeer(p)
		if p.State == mesh.Connected {
			e.peerUp(p)
		}
	}
	e.replayPending()
	return nil
}

// goLoop runs f on a goroutine owned by the engine.
func (e *Engine) goLoop(f func()) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
}

// replayPending handles the events that arrived before Start, then lets
// HandleEvent work directly. Events arriving meanwhile queue behind.
func (e *Engine) replayPending() {
	for {
		e.mu.Lock()
		batch := e.pending
		e.pending = nil
		if len(batch) == 0 {
			e.started = true
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
		for _, ev := range batch {
			e.dispatch(ev)
		}
	}
}

// Close stops every goroutine, closes open files and waits. Idempotent.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	for _, p := range e.peers {
		p.cancel()
	}
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	e.mu.Lock()
	for _, tr := range e.in {
		tr.closeFile()
	}
	e.mu.Unlock()
	return e.chat.Close()
}

// HandleEvent implements mesh.Handler. It routes the event to the engine's
// goroutines and never does I/O itself; it blocks only while a bounded
// queue for that peer is full.
func (e *Engine) HandleEvent(ev mesh.Event) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	if !e.started {
		if len(e.pending) < maxPendingEvents {
			e.pending = append(e.pending, ev)
		} else {
			e.log.Warn("event dropped before start", "pending", len(e.pending))
		}
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	e.dispatch(ev)
}

// dispatch routes one event.
func (e *Engine) dispatch(ev mesh.Event) {
	switch ev := ev.(type) {
	case mesh.PeerConnected:
		e.notePeer(ev.Peer)
		e.peerUp(ev.Peer)
		e.chatEvent(fmt.Sprintf("%s joined", e.displayName(ev.Peer.ID)))
	case mesh.PeerDisconnected:
		e.peerDown(ev.Peer.ID)
		e.chatEvent(fmt.Sprintf("%s left", e.displayName(ev.Peer.ID)))
	case mesh.PeerRemoved:
		e.peerDown(ev.Peer.ID)
		e.jobs.push(job{kind: jobPeerRemoved, peer: ev.Peer.ID})
		e.chatEvent(fmt.Sprintf("%s was removed", e.displayName(ev.Peer.ID)))
	case mesh.ChatReceived:
		e.notePeer(ev.From)
		e.sendChatJob(chatJob{from: ev.From.ID, name: ev.From.Name, chat: ev.Chat})
	case mesh.BytesReceived:
		e.routeBytes(ev.From, ev.Data)
	}
}

// notePeer remembers a peer's display name for folders and logs.
func (e *Engine) notePeer(p mesh.PeerInfo) {
	if p.Name == "" {
		return
	}
	e.mu.Lock()
	e.names[p.ID] = safeName(p.Name)
	e.mu.Unlock()
}

// displayName returns the sanitised display name of a peer, or its short ID.
func (e *Engine) displayName(id mesh.PeerID) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.displayNameLocked(id)
}

func (e *Engine) displayNameLocked(id mesh.PeerID) string {
	if n, ok := e.names[id]; ok {
		return n
	}
	return id.Short()
}

// routeBytes decodes the kind byte and hands the message to the right
// goroutine: sender-side replies to that peer's sender mailbox (never
// blocks), transfer data to its receiver (may block), CHAT_HAVE to the
// broadcaster.
func (e *Engine) routeBytes(from mesh.PeerID, data []byte) {
	if len(data) == 0 {
		e.log.Debug("empty message", "peer", from)
		return
	}
	if kind(data[0]) != kindChunk {
		// data is only valid during the call, and decoded messages may
		// keep slices of it. Chunks are copied into block buffers instead.
		data = bytes.Clone(data)
	}
	switch kind(data[0]) {
	case kindAccept, kindReject, kindAck:
		msg, err := decodeMessage(data)
		if err != nil {
			e.log.Debug("bad message", "peer", from, "err", err)
			return
		}
		if p := e.peer(from); p != nil {
			p.mail.put(msg)
		}
	case kindChatHave:
		msg, err := decodeMessage(data)
		if err != nil {
			e.log.Debug("bad message", "peer", from, "err", err)
			return
		}
		e.broadcast.catchUp(from, msg.(*chatHaveMsg).Seq)
	default:
		p := e.peerOrUp(from)
		if p == nil {
			return
		}
		in, err := newInMsg(p, data)
		if err != nil {
			e.log.Debug("bad message", "peer", from, "err", err)
			return
		}
		select {
		case p.inbound <- in:
		case <-p.ctx.Done():
		}
	}
}

// chatEvent appends an event line ("* text") to the rendered chat log.
func (e *Engine) chatEvent(text string) {
	e.sendChatJob(chatJob{event: text})
}

// sendChatJob hands work to the chat loop, blocking while it is busy.
func (e *Engine) sendChatJob(j chatJob) {
	select {
	case e.chatIn <- j:
	case <-e.ctx.Done():
	}
}

// noteError counts and reports an error that was handled (logged) here.
func (e *Engine) noteError(err error) {
	if errors.Is(err, ErrChecksum) {
		e.checksumErrors.Add(1)
	}
	if e.errHook != nil {
		e.errHook(err)
	}
}

// changed reports a path under Root the engine changed (Config.OnChange).
func (e *Engine) changed(rel string) {
	if e.cfg.OnChange != nil {
		e.cfg.OnChange(rel)
	}
}

// transport returns the transport (nil before Start).
func (e *Engine) transport() Transport {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.t
}
