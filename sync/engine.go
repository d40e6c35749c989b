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
	"github.com/meshfs/meshfs/internal/present"
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
	// BlockSize is the block size of outgoing transfers (64 KiB..64 MiB),
	// doubled for files too large for 16384 blocks of it. A block over
	// 1 MiB travels in 1 MiB pieces, which fit the transport's BYTES cap.
	BlockSize int
	// MaxFileSize is the largest file sent or accepted. By default it is
	// the largest a transfer carries (1 TiB): what refuses a received file
	// is then the free space it would need (MinFreePercent).
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
	// AntiEntropy is how often the room compares what it holds with one
	// member at random (room.go); members also compare when they connect.
	AntiEntropy time.Duration
	// CompletedTTL is how long completed inbound transfer IDs are
	// remembered, so a replayed OFFER gets an ACK instead of a second copy.
	CompletedTTL time.Duration
	// InboundIdle: an inbound transfer with no message for this long gives
	// up its concurrency slot and its file descriptor.
	InboundIdle time.Duration
	// SourceStall: a member asked for blocks of a file that sends none of
	// them for this long (or four times its usual gap between blocks) has
	// them asked of other members, and lets another member that offers
	// the file in (sources.go).
	SourceStall time.Duration
	// JanitorInterval is how often stale partials are looked for.
	JanitorInterval time.Duration
	// QueueLen is the length of each bounded hand-off channel; a full one
	// applies back-pressure to that peer's connection.
	QueueLen int
	// StreamMinSize: files at least this large are offered at once and
	// hashed while they are sent (send.go) when they go to one member;
	// smaller ones are hashed first. It is also the size from which a file
	// goes to at most FileUploads members at once from here.
	StreamMinSize int64
	// FileUploads is how many members one large file is sent to at once
	// from this member; the others get it from those, passed on while it
	// comes in (relay.go), so each uplink carries each block about once.
	FileUploads int
	// FetchWindow is about how many bytes of a file one member is asked
	// for at a time when the file may come from several (sources.go).
	FetchWindow int
	// DotHold: a closed file whose name starts with a dot is sent once it
	// stayed unchanged this long (names.go heldName).
	DotHold time.Duration
	// TreeSettle: the delivered files of a folder in outbox/ move to sent/
	// together, once all are delivered and nothing under the folder changed
	// for this long.
	TreeSettle time.Duration
	// OnChange, when not nil, is told each path (relative to Root) that
	// the engine creates, removes or moves in outbox/, sent/ or inbox/, so
	// a frontend can drop what it cached. It must not block.
	OnChange func(rel string)
	// Writing, when not nil, reports whether a process holds a file at or
	// below outbox path rel open for writing. A folder waits in outbox/
	// while it does, however long the writer is quiet (git resolving
	// deltas), so the tool finds its files and a rewrite still replaces
	// the earlier version at receivers. It is called from the outbox
	// loop and must not block for long.
	Writing func(rel string) bool
	// WritingTo is Writing for to/<name>/ (rel relative to it).
	WritingTo func(name, rel string) bool
	// Addresses, when not nil, returns this node's own addresses for
	// Status and the peers file. It must not block.
	Addresses func() AddressStatus
}

// MaxFileSizeLimit is the largest Config.MaxFileSize New accepts: the
// biggest file one transfer can carry (1 TiB).
const MaxFileSizeLimit = maxFileSize

// DefaultConfig returns the default limits (Root and StateDir empty).
func DefaultConfig() Config {
	return Config{
		BlockSize:         1 << 20,
		MaxFileSize:       maxFileSize,
		MaxInboundPerPeer: 4,
		MaxInboundTotal:   32,
		MaxOffersInFlight: 4,
		PartialTTL:        24 * time.Hour,
		RetryInterval:     30 * time.Second,
		MinFreePercent:    1,
		AntiEntropy:       time.Minute,
		CompletedTTL:      7 * 24 * time.Hour,
		InboundIdle:       2 * time.Minute,
		SourceStall:       5 * time.Second,
		JanitorInterval:   time.Hour,
		QueueLen:          64,
		StreamMinSize:     4 << 20,
		FileUploads:       1,
		FetchWindow:       16 << 20,
		DotHold:           2 * time.Second,
		TreeSettle:        5 * time.Second,
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
	fill(&c.FileUploads, d.FileUploads)
	fill(&c.FetchWindow, d.FetchWindow)
	fillDur(&c.AntiEntropy, d.AntiEntropy)
	fill(&c.QueueLen, d.QueueLen)
	if c.StreamMinSize <= 0 {
		c.StreamMinSize = d.StreamMinSize
	}
	fillDur(&c.PartialTTL, d.PartialTTL)
	fillDur(&c.RetryInterval, d.RetryInterval)
	fillDur(&c.CompletedTTL, d.CompletedTTL)
	fillDur(&c.InboundIdle, d.InboundIdle)
	fillDur(&c.SourceStall, d.SourceStall)
	fillDur(&c.JanitorInterval, d.JanitorInterval)
	fillDur(&c.DotHold, d.DotHold)
	fillDur(&c.TreeSettle, d.TreeSettle)
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
	case c.MaxFileSize > maxFileSize:
		return c, fmt.Errorf("config: max file size %s over the %s a transfer can carry", present.IEC(uint64(c.MaxFileSize)), present.IEC(maxFileSize))
	}
	return c, nil
}

// env is what every part of the engine shares: immutable after New, but
// for the transport, which Start sets once.
type env struct {
	cfg                                     Config
	log                                     *slog.Logger
	outboxDir, sentDir, inboxDir, partsDir  string
	toDir, sealedDir                        string // to/ in the tree; own private files' boxes in the state
	outgoingDir, completedPath, foldersPath string
	ctx                                     context.Context
	cancel                                  context.CancelFunc
	wg                                      sync.WaitGroup // every goroutine of the engine
	tr                                      atomic.Pointer[Transport]
	checksumErrors                          atomic.Uint64 // blocks dropped for a bad hash
	bad                                     *badRecords   // data that did not verify, per member that sent it

	// Test hooks, set before Start.
	freeSpace func(path string) (free, total uint64, err error)
	errHook   func(error)
	writeAt   func(f *os.File, b []byte, off int64) (int, error) // block writes (fault injection)
}

// transport returns the transport (nil before Start).
func (v *env) transport() Transport {
	if t := v.tr.Load(); t != nil {
		return *t
	}
	return nil
}

// goLoop runs f on a goroutine owned by the engine: Close waits for it.
func (v *env) goLoop(f func()) {
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		f()
	}()
}

// changed reports a path under Root the engine changed (Config.OnChange).
func (v *env) changed(rel string) {
	if v.cfg.OnChange != nil {
		v.cfg.OnChange(rel)
	}
}

// noteError counts and reports an error that was handled (logged) here.
func (v *env) noteError(err error) {
	if errors.Is(err, ErrChecksum) {
		v.checksumErrors.Add(1)
	}
	if v.errHook != nil {
		v.errHook(err)
	}
}

// Engine moves files and chat between the members of a mesh. Create it with
// New, give it a transport with Start, stop it with Close.
//
// Its state has owners, each with its own lock: the peer set (who is
// connected, under which name), outbound (delivery records and the outbox
// loop), inbound (partial files, completed transfers, inbox folders) and
// the chat delivery (chat.go). No lock is held while another is taken,
// except that the life-cycle lock e.mu may be held while one is.
type Engine struct {
	*env
	peers *peerSet
	out   *outbound
	in    *inbound

	// The room (chat.go, room.go), which also spreads receipts.
	chat     *chat.Store
	receipts *receiptBook
	own      ownQueue       // own lines for the room loop
	roomIn   chan roomJob   // received records, vectors, members up and down, events
	dm       *conversations // private lines rendered per member (private.go)

	rtts shownRTTs // the RTT the peers table shows per member (status.go)
	// members has a value after a member connected, left or was removed
	// (MembersChanged): the plain folder's peers loop renders then.
	members chan struct{}

	mu      sync.Mutex // guards the life cycle below
	started bool
	closed  bool
	pending []mesh.Event // events that arrived before Start
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
	v := &env{
		cfg:           cfg,
		log:           cfg.Logger,
		outboxDir:     filepath.Join(cfg.Root, "outbox"),
		sentDir:       filepath.Join(cfg.Root, "sent"),
		inboxDir:      filepath.Join(cfg.Root, "inbox"),
		partsDir:      filepath.Join(cfg.Root, "inbox", partialsName),
		toDir:         filepath.Join(cfg.Root, "to"),
		sealedDir:     filepath.Join(cfg.StateDir, "sealed"),
		outgoingDir:   filepath.Join(cfg.StateDir, "outgoing"),
		completedPath: filepath.Join(cfg.StateDir, "completed.json"),
		foldersPath:   filepath.Join(cfg.StateDir, "folders.json"),
		freeSpace:     statfsFree,
		bad:           &badRecords{},
		writeAt:       (*os.File).WriteAt,
	}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	e := &Engine{env: v, peers: newPeerSet(), roomIn: make(chan roomJob, cfg.QueueLen), own: newOwnQueue(),
		dm: &conversations{dir: filepath.Join(cfg.StateDir, "dm")}, members: make(chan struct{}, 1)}
	if err := e.open(); err != nil {
		v.cancel()
		if e.chat != nil {
			e.chat.Close()
		}
		if e.receipts != nil {
			e.receipts.close()
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
	store, err := chat.Open(e.cfg.StateDir)
	if err != nil {
		return err
	}
	e.chat = store
	if e.receipts, err = openReceipts(filepath.Join(e.cfg.StateDir, "receipts.jsonl")); err != nil {
		return err
	}
	e.in = newInbound(e.env, e.peers, e.chatEvent, e.received, e.receipts.has)
	e.out = newOutbound(e.env, e.peers)
	e.out.memberNamed = e.memberNamed
	e.out.blocks = e.in.blockState
	if err := e.in.load(); err != nil {
		return err
	}
	return e.out.load()
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
	if !e.tr.CompareAndSwap(nil, &t) {
		e.mu.Unlock()
		return errors.New("start: already started")
	}
	e.mu.Unlock()

	e.chat.SetSelf(t.ID(), t.Name(), t.Signer())
	if err := e.dm.rebuild(e.chat, t.ID(), t.SealKey()); err != nil {
		e.log.Warn("private conversations not shown", "err", err, "fix", fixState)
	}
	for _, r := range e.receipts.all() { // those that came while we were away
		e.out.noteReceipt(keyOf(r), r.Receiver)
	}
	e.goLoop(e.out.loop)
	e.goLoop(e.roomLoop)
	e.goLoop(e.in.janitorLoop)
	e.out.rescan()
	for _, p := range t.Peers() {
		e.peers.noteName(p)
		if p.State == mesh.Connected {
			e.peerUp(p)
		}
	}
	e.replayPending()
	return nil
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
	e.mu.Unlock()
	e.peers.stopAll()
	e.cancel()
	e.wg.Wait()
	e.in.closeFiles()
	e.receipts.close()
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
			e.log.Warn("mesh event dropped during startup", "pending", len(e.pending),
				"fix", "restart meshfs if files stop reaching a member")
		}
		e.mu.Unlock()
		return
	}
	e.mu.Unlock()
	e.dispatch(ev)
}

// dispatch routes one event.
func (e *Engine) dispatch(ev mesh.Event) {
	switch ev.(type) {
	case mesh.PeerConnected, mesh.PeerDisconnected, mesh.PeerRemoved:
		select {
		case e.members <- struct{}{}:
		default: // one pending signal is enough
		}
	}
	switch ev := ev.(type) {
	case mesh.PeerConnected:
		e.peers.noteName(ev.Peer)
		e.peerUp(ev.Peer)
		if e.peers.cameBack(ev.Peer.ID) {
			e.chatEvent(fmt.Sprintf("%s joined", e.peers.displayName(ev.Peer.ID)))
		}
	case mesh.PeerDisconnected:
		e.peerDown(ev.Peer.ID)
		e.toRoom(roomJob{from: ev.Peer.ID, gone: true})
		// A connection the partial mesh closed, or one a newer connection
		// replaced, is not news: the member is still there.
		if e.peers.wentAway(ev.Peer.ID, ev.Left()) {
			e.chatEvent(fmt.Sprintf("%s left", e.peers.displayName(ev.Peer.ID)))
		}
	case mesh.PeerRemoved:
		e.peerDown(ev.Peer.ID)
		e.toRoom(roomJob{from: ev.Peer.ID, gone: true})
		e.out.jobs.push(job{kind: jobPeerRemoved, peer: ev.Peer.ID})
		e.chatEvent(fmt.Sprintf("%s was removed", e.peers.displayName(ev.Peer.ID)))
	case mesh.ChatReceived:
		// A CHAT frame: unsigned, from a member on sync protocol 3 or
		// older, whose HELLO already put the reason in its status.
		e.log.Debug("chat frame of an older protocol ignored", "peer", ev.From.ID)
	case mesh.BytesReceived:
		e.routeBytes(ev.From, ev.Data)
	}
}

// routeBytes decodes the kind byte and hands the message to the right
// goroutine: sender-side replies to that peer's sender (never blocks),
// transfer data to its receiver (may block), HAVE, RECORDS and RECEIPTS to
// the room loop (may block). A FETCHING it applies itself (never blocks).
func (e *Engine) routeBytes(from mesh.PeerID, data []byte) {
	dumpWire(data)
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
		if p := e.peers.get(from); p != nil {
			p.replies.put(msg)
		}
	case kindFetching:
		e.onFetching(from, data)
	case kindHave, kindRecords, kindReceipts:
		msg, err := decodeMessage(data)
		if err != nil {
			e.log.Debug("bad message", "peer", from, "err", err)
			return
		}
		e.toRoom(roomJob{from: from, msg: msg})
	case kindHello:
		msg, err := decodeMessage(data)
		if err != nil {
			e.log.Debug("bad message", "peer", from, "err", err)
			return
		}
		p := e.peerOrUp(from)
		if p != nil && p.greeted(msg.(*helloMsg).Version) {
			e.toRoom(roomJob{from: from, ready: true})
			e.in.tellAuthor(from)
		} else if p != nil {
			e.log.Warn("member speaks another sync protocol; nothing is sent to it", "peer", from,
				"member", e.peers.displayName(from), "theirs", msg.(*helloMsg).Version, "ours", Version,
				"fix", "install the same meshfs version here and on "+e.peers.displayName(from))
		}
	default:
		e.toReceiver(from, data)
	}
}

// toReceiver decodes an OFFER, CHUNK or DONE and queues it for the peer's
// receiver, blocking while that queue is full: back-pressure on the
// peer's connection.
func (e *Engine) toReceiver(from mesh.PeerID, data []byte) {
	p := e.peerOrUp(from)
	if p == nil {
		return
	}
	if why := p.problem(); why != "" {
		e.log.Debug("message dropped", "peer", from, "why", why)
		return
	}
	in, err := newInMsg(p, data)
	if err != nil {
		e.log.Debug("bad message", "peer", from, "err", err)
		return
	}
	select {
	case p.toReceive <- in:
	case <-p.ctx.Done():
	}
}
