package sync

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfs/meshfs/record"

	"github.com/meshfs/meshfs/internal/testutil"
	"github.com/meshfs/meshfs/mesh"
)

// fakeNet connects engines in memory, like memberlist's mock transport:
// one goroutine per directed link delivers control messages before bulk
// ones, and a link can be cut and restored.
type fakeNet struct {
	t   testing.TB
	dir string
	mu  sync.Mutex
	// guarded by mu
	nodes      map[mesh.PeerID]*fakeNode
	links      map[[2]mesh.PeerID]*fakeLink
	revoked    map[mesh.PeerID]bool                           // MemberKey refuses these
	mutate     func(from, to mesh.PeerID, data []byte) []byte // may change or drop (nil) a BYTES payload
	gates      map[[2]mesh.PeerID]*fakeGate                   // CHUNKs held on a link (gate)
	wg         sync.WaitGroup
	chunks     atomic.Int64 // CHUNK messages sent
	chunkBytes atomic.Int64 // data bytes of the CHUNKs sent: what a sender put on the wire
	delivered  atomic.Int64 // CHUNK messages delivered
}

type fakeNode struct {
	net        *fakeNet
	id         mesh.PeerID
	key        ed25519.PrivateKey
	sentBlocks atomic.Int64 // data bytes of the CHUNKs this node sent
	name       string
	root       string
	st         string
	cfg        Config
	mu         sync.Mutex
	eng        *Engine
	recv       func(from mesh.PeerID, data []byte) // for engine-less nodes
}

type fakeMsg struct {
	data []byte
}

type fakeLink struct {
	from, to   *fakeNode
	ctrl, bulk chan fakeMsg
	ctx        context.Context
	cancel     context.CancelFunc
}

func newFakeNet(t testing.TB) *fakeNet {
	n := &fakeNet{t: t, dir: t.TempDir(), nodes: map[mesh.PeerID]*fakeNode{}, links: map[[2]mesh.PeerID]*fakeLink{}}
	t.Cleanup(n.shutdown) // runs before the TempDir is removed
	return n
}

// addNode registers a member with its own temp dirs and engine (not started).
func (n *fakeNet) addNode(name string, edit func(*Config)) *fakeNode {
	n.t.Helper()
	seed := sha256.Sum256([]byte(name))
	key := ed25519.NewKeyFromSeed(seed[:])
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		n.t.Fatal(err)
	}
	id := mesh.PeerIDFromKey(spki) // as mesh derives it: records check it
	dir, err := os.MkdirTemp(n.dir, "node")
	if err != nil {
		n.t.Fatal(err)
	}
	fn := &fakeNode{net: n, id: id, key: key, name: name, root: filepath.Join(dir, "tree"), st: filepath.Join(dir, "sync")}
	fn.cfg = DefaultConfig()
	fn.cfg.Root, fn.cfg.StateDir = fn.root, fn.st
	fn.cfg.Logger = testutil.Logger(n.t).With("node", name)
	fn.cfg.BlockSize = minBlockSize
	fn.cfg.RetryInterval = 50 * time.Millisecond
	fn.cfg.TreeSettle = 300 * time.Millisecond
	if edit != nil {
		edit(&fn.cfg)
	}
	n.mu.Lock()
	n.nodes[id] = fn
	n.mu.Unlock()
	fn.open()
	return fn
}

// open creates the node's engine on its dirs (again, for a restart).
func (fn *fakeNode) open() {
	fn.net.t.Helper()
	e, err := New(fn.cfg)
	if err != nil {
		fn.net.t.Fatalf("New(%s) = %v", fn.name, err)
	}
	fn.mu.Lock()
	fn.eng = e
	fn.mu.Unlock()
}

func (fn *fakeNode) engine() *Engine {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.eng
}

func (fn *fakeNode) start() {
	fn.net.t.Helper()
	if err := fn.engine().Start(fn); err != nil {
		fn.net.t.Fatalf("Start(%s) = %v", fn.name, err)
	}
}

// closeEngine closes the engine (links stay as they are).
func (fn *fakeNode) closeEngine() {
	if e := fn.engine(); e != nil {
		e.Close()
	}
}

// Transport implementation.

func (fn *fakeNode) ID() mesh.PeerID { return fn.id }
func (fn *fakeNode) Name() string    { return fn.name }

func (fn *fakeNode) Peers() []mesh.PeerInfo {
	n := fn.net
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []mesh.PeerInfo
	for id, o := range n.nodes {
		if id == fn.id {
			continue
		}
		p := mesh.PeerInfo{ID: id, Name: o.name, State: mesh.Offline}
		if _, ok := n.links[[2]mesh.PeerID{fn.id, id}]; ok {
			p.State, p.Addr, p.RTT, p.LastSeen = mesh.Connected, "mem:"+o.name, 300*time.Microsecond, time.Now()
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b mesh.PeerInfo) int { return cmpString(a.Name, b.Name) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (fn *fakeNode) send(ctx context.Context, to mesh.PeerID, m fakeMsg, bulk bool) error {
	n := fn.net
	n.mu.Lock()
	l := n.links[[2]mesh.PeerID{fn.id, to}]
	mutate := n.mutate
	n.mu.Unlock()
	if l == nil {
		return mesh.ErrBadPeerID // stands in for mesh.ErrUnknownPeer
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.data != nil {
		m.data = slices.Clone(m.data)
		if m.data[0] == byte(kindChunk) {
			n.chunks.Add(1)
			n.chunkBytes.Add(int64(len(m.data) - chunkHeaderLen))
			fn.sentBlocks.Add(int64(len(m.data) - chunkHeaderLen))
		}
		if mutate != nil {
			if m.data = mutate(fn.id, to, m.data); m.data == nil {
				return nil
			}
		}
	}
	q := l.ctrl
	if bulk {
		q = l.bulk
	}
	select {
	case q <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.ctx.Done():
		return fmt.Errorf("link closed: %w", l.ctx.Err())
	}
}

func (fn *fakeNode) SendBytes(ctx context.Context, to mesh.PeerID, data []byte) error {
	return fn.send(ctx, to, fakeMsg{data: data}, false)
}

func (fn *fakeNode) SendBulk(ctx context.Context, to mesh.PeerID, data []byte) error {
	return fn.send(ctx, to, fakeMsg{data: data}, true)
}

func (fn *fakeNode) Signer() crypto.Signer { return fn.key }

func (fn *fakeNode) SealKey() ed25519.PrivateKey { return fn.key }

// MemberKey knows every node of the net; revoked ones are refused.
func (fn *fakeNode) MemberKey(id mesh.PeerID) (ed25519.PublicKey, error) {
	fn.net.mu.Lock()
	defer fn.net.mu.Unlock()
	other := fn.net.nodes[id]
	switch {
	case other == nil:
		return nil, mesh.ErrUnknownMember
	case fn.net.revoked[id]:
		return nil, mesh.ErrRevoked
	}
	return other.key.Public().(ed25519.PublicKey), nil
}

// connect brings up both directions between a and b and tells both.
func (n *fakeNet) connect(a, b *fakeNode) {
	n.mu.Lock()
	la, lb := n.newLink(a, b), n.newLink(b, a)
	n.mu.Unlock()
	a.deliver(mesh.PeerConnected{Peer: mesh.PeerInfo{ID: b.id, Name: b.name, State: mesh.Connected}})
	b.deliver(mesh.PeerConnected{Peer: mesh.PeerInfo{ID: a.id, Name: a.name, State: mesh.Connected}})
	n.run(la)
	n.run(lb)
}

func (n *fakeNet) newLink(from, to *fakeNode) *fakeLink {
	ctx, cancel := context.WithCancel(context.Background())
	l := &fakeLink{from: from, to: to, ctrl: make(chan fakeMsg, 64), bulk: make(chan fakeMsg, 8), ctx: ctx, cancel: cancel}
	n.links[[2]mesh.PeerID{from.id, to.id}] = l
	return l
}

// run delivers a link's messages, control first, until it is cut.
func (n *fakeNet) run(l *fakeLink) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			var m fakeMsg
			select {
			case <-l.ctx.Done():
				return
			case m = <-l.ctrl:
			default:
				select {
				case <-l.ctx.Done():
					return
				case m = <-l.ctrl:
				case m = <-l.bulk:
				}
			}
			if m.data != nil && m.data[0] == byte(kindChunk) {
				if !n.pass(l) {
					return
				}
				n.delivered.Add(1)
			}
			l.to.receive(l.from, m)
		}
	}()
}

func (fn *fakeNode) receive(from *fakeNode, m fakeMsg) {
	if fn.recv != nil {
		if m.data != nil {
			fn.recv(from.id, m.data)
		}
		return
	}
	fn.deliver(mesh.BytesReceived{From: from.id, Data: m.data})
}

func (fn *fakeNode) deliver(ev mesh.Event) {
	if e := fn.engine(); e != nil {
		e.HandleEvent(ev)
	}
}

// cut drops both directions between a and b and tells both.
func (n *fakeNet) cut(a, b *fakeNode) {
	n.mu.Lock()
	for _, k := range [][2]mesh.PeerID{{a.id, b.id}, {b.id, a.id}} {
		if l := n.links[k]; l != nil {
			l.cancel()
			delete(n.links, k)
		}
	}
	n.mu.Unlock()
	a.deliver(mesh.PeerDisconnected{Peer: mesh.PeerInfo{ID: b.id, Name: b.name}})
	b.deliver(mesh.PeerDisconnected{Peer: mesh.PeerInfo{ID: a.id, Name: a.name}})
}

func (n *fakeNet) shutdown() {
	n.mu.Lock()
	for k, l := range n.links {
		l.cancel()
		delete(n.links, k)
	}
	nodes := make([]*fakeNode, 0, len(n.nodes))
	for _, fn := range n.nodes {
		nodes = append(nodes, fn)
	}
	n.mu.Unlock()
	for _, fn := range nodes {
		fn.closeEngine()
	}
	n.wg.Wait()
}

// fakeGate lets the first pass CHUNKs of a link through and holds the
// next until it opens: a transfer stays mid-way for as long as a test
// looks at it, without sleeping.
type fakeGate struct {
	pass int64
	seen atomic.Int64
	open chan struct{}
}

// gate holds the CHUNKs from one node to another after the first pass of
// them; the returned func opens it (once; the test's cleanup opens it too).
func (n *fakeNet) gate(from, to *fakeNode, pass int64) (open func()) {
	g := &fakeGate{pass: pass, open: make(chan struct{})}
	n.mu.Lock()
	if n.gates == nil {
		n.gates = map[[2]mesh.PeerID]*fakeGate{}
	}
	n.gates[[2]mesh.PeerID{from.id, to.id}] = g
	n.mu.Unlock()
	open = sync.OnceFunc(func() { close(g.open) })
	n.t.Cleanup(open)
	return open
}

// pass waits until a CHUNK may cross link l; false if the link was cut
// meanwhile.
func (n *fakeNet) pass(l *fakeLink) bool {
	n.mu.Lock()
	g := n.gates[[2]mesh.PeerID{l.from.id, l.to.id}]
	n.mu.Unlock()
	if g == nil || g.seen.Add(1) <= g.pass {
		return true
	}
	select {
	case <-g.open:
		return true
	case <-l.ctx.Done():
		return false
	}
}

// Helpers for the tests.

// heal drops the mutation a cut installed and connects a and b again. It
// returns how many messages were delivered since, for counting resends.
func (n *fakeNet) heal(a, b *fakeNode) (since func() int64) {
	n.mu.Lock()
	n.mutate = nil
	n.mu.Unlock()
	before := n.delivered.Load()
	n.connect(a, b)
	return func() int64 { return n.delivered.Load() - before }
}

// put writes a file into the node's outbox and reports it closed.
func (fn *fakeNode) put(rel string, data []byte) {
	fn.net.t.Helper()
	p := filepath.Join(fn.root, "outbox", filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		fn.net.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		fn.net.t.Fatal(err)
	}
	fn.engine().OutboxClosed(rel)
}

// waitFile polls until rel (under the node's tree) has exactly want.
func (fn *fakeNode) waitFile(rel string, want []byte) {
	fn.net.t.Helper()
	p := filepath.Join(fn.root, filepath.FromSlash(rel))
	err := testutil.WaitFor(10*time.Second, func() error {
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if sha256.Sum256(got) != sha256.Sum256(want) {
			return fmt.Errorf("%s: %d bytes, content differs from want (%d bytes)", rel, len(got), len(want))
		}
		return nil
	})
	if err != nil {
		fn.net.t.Fatalf("%s: %v", fn.name, err)
	}
}

// waitGone polls until rel does not exist.
func (fn *fakeNode) waitGone(rel string) {
	fn.net.t.Helper()
	p := filepath.Join(fn.root, filepath.FromSlash(rel))
	err := testutil.WaitFor(10*time.Second, func() error {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s still exists", rel)
		}
		return nil
	})
	if err != nil {
		fn.net.t.Fatalf("%s: %v", fn.name, err)
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func isChecksum(err error) bool { return errorsIs(err, ErrChecksum) }

var errorsIs = errors.Is

func splitLines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// effectTimeout bounds every wait for an effect: it returns as soon as the
// effect shows, and is generous because -race on a loaded two-core machine
// runs the engines several times slower.
const effectTimeout = 20 * time.Second

// line is a chat record of this node's, signed with its key, as its engine
// would send it.
func (fn *fakeNode) line(seq uint64, text string) record.Chat {
	c := record.Chat{Author: fn.id, Seq: seq, Lamport: seq, Time: time.Now(), Text: text}
	c.Sign(fn.key)
	return c
}
