package sync

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"time"
	"unicode/utf8"

	"github.com/meshfs/meshfs/chat"
	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/internal/safetext"
	"github.com/meshfs/meshfs/internal/wire"
	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
	"github.com/meshfs/meshfs/seal"
)

// A private line is a chat record with a recipient (record.Chat.To) whose
// text travels sealed with age to the recipient's and the author's
// certified keys (package seal). It takes the author's next number like a
// room line and spreads like one: every member stores it and passes it on,
// so the author's numbers have no gaps anywhere and a recipient away for a
// week gets it from whoever is up; only the two can open it. Each renders
// the conversation in dm/<member-id>.log under the state folder, which
// the frontends show as dm/<name>.
//
// The sealed text starts with the author, the recipient and the number, so
// a member cannot copy another's sealed line into a record of its own and
// have it shown under its name: the opener checks them against the record
// the author signed.

// privateLineDomain starts a private line's sealed plaintext.
const privateLineDomain = "meshfs private line v1\x00"

// ErrNotMember: a private line was addressed to a name that is no current
// member's. It comes wrapped with fs.ErrNotExist, which frontends show as
// ENOENT.
var ErrNotMember = errors.New("not a current member")

// errUnopenable: a private line addressed to this member that cannot be
// opened: not sealed to its key, damaged, or bound to another record.
var errUnopenable = errors.New("private line cannot be opened")

// Conversation is one private conversation: the member's unique display
// name, safe as a file name, and the rendered log of the lines between
// the two, an append-only file that may not exist yet.
type Conversation struct {
	Name string
	Log  string
}

// sealLine seals text for the private line m (Author, To and Seq set) to
// its recipient's key and its author's own.
func sealLine(m record.Chat, text string, author, to ed25519.PublicKey) ([]byte, error) {
	var e wire.Encoder
	e.Raw([]byte(privateLineDomain))
	e.Raw(m.Author[:])
	e.Raw(m.To[:])
	e.U64(m.Seq)
	e.Str(text)
	return seal.SealBytes(e.B, to, author)
}

// openLine opens the private line m with this member's key and checks that
// the sealed text belongs to m and is text an honest author would send.
func openLine(m record.Chat, key ed25519.PrivateKey) (string, error) {
	b, err := seal.OpenBytes(m.Sealed, key, record.MaxSealed)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errUnopenable, err)
	}
	d := wire.Decoder{B: b}
	domain := string(d.Take(len(privateLineDomain)))
	var author, to mesh.PeerID
	d.Into(author[:])
	d.Into(to[:])
	seq := d.U64()
	text := d.Str(chat.MaxBytes)
	if err := d.End(); err != nil || domain != privateLineDomain {
		return "", fmt.Errorf("%w: sealed text malformed", errUnopenable)
	}
	if author != m.Author || to != m.To || seq != m.Seq {
		return "", fmt.Errorf("%w: sealed for line %d of %s to %s, not this record", errUnopenable, seq, author.Short(), to.Short())
	}
	if !utf8.ValidString(text) || safetext.Text(text) != text || text == "" {
		return "", fmt.Errorf("%w: sealed text is not a clean line", errUnopenable)
	}
	return text, nil
}

// conversations renders the private lines this member can open, one log
// per other member. The logs are derived: rebuilt from the chat store at
// Start, appended to as lines come, never synced (a crash rebuilds them).
type conversations struct {
	dir string // STATE/sync/dm

	mu gosync.Mutex // serialises appends: Say runs in FUSE callbacks, received lines in the room loop
}

// logPath is the conversation log with member id.
func (cv *conversations) logPath(id mesh.PeerID) string {
	return filepath.Join(cv.dir, id.String()+".log")
}

// add appends one line to the conversation with peer.
func (cv *conversations) add(peer mesh.PeerID, at time.Time, name, text string) error {
	cv.mu.Lock()
	defer cv.mu.Unlock()
	f, err := os.OpenFile(cv.logPath(peer), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("conversation log: %w", err)
	}
	_, err = fmt.Fprintf(f, "[%s] %s: %s\n", at.Local().Format(time.DateTime), name, text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("conversation log: %w", err)
	}
	return nil
}

// rebuild renders every conversation anew from the store's private lines
// that self can open, replacing each log whole.
func (cv *conversations) rebuild(store *chat.Store, self mesh.PeerID, key ed25519.PrivateKey) error {
	logs := map[mesh.PeerID][]byte{}
	err := store.PrivateLines(func(m record.Chat, name string) {
		peer := m.To
		if m.To == self {
			peer = m.Author
		} else if m.Author != self {
			return // between two others: stored to pass on, not ours to read
		}
		if text, err := openLine(m, key); err == nil {
			logs[peer] = fmt.Appendf(logs[peer], "[%s] %s: %s\n", m.Time.Local().Format(time.DateTime), name, text)
		}
	})
	if err != nil {
		return fmt.Errorf("conversations: %w", err)
	}
	if err := os.MkdirAll(cv.dir, 0o700); err != nil {
		return fmt.Errorf("conversations: %w", err)
	}
	cv.mu.Lock()
	defer cv.mu.Unlock()
	old, _ := filepath.Glob(filepath.Join(cv.dir, "*.log"))
	for _, p := range old { // a log of lines the store no longer holds
		if id, ok := idOfLog(p); ok && logs[id] == nil {
			logs[id] = []byte{}
		}
	}
	for peer, b := range logs {
		if err := atomicfile.Write(cv.logPath(peer), b, 0o600); err != nil {
			return fmt.Errorf("conversations: %w", err)
		}
	}
	return nil
}

// Conversations lists the members this node may talk to privately: every
// current member but this one, under a unique display name, sorted. Two
// members with one name are told apart by their short IDs.
func (e *Engine) Conversations() []Conversation {
	members := e.namedMembers()
	out := make([]Conversation, len(members))
	for i, m := range members {
		out[i] = Conversation{Name: m.name, Log: e.dm.logPath(m.id)}
	}
	return out
}

// namedMember is a current member under the name its dm/ file and to/
// folder have.
type namedMember struct {
	name string
	id   mesh.PeerID
}

// namedMembers is every current member but this one under a unique
// display name, sorted by it (Conversations).
func (e *Engine) namedMembers() []namedMember {
	t := e.transport()
	if t == nil {
		return nil
	}
	peers := t.Peers()
	count := map[string]int{}
	for _, p := range peers {
		count[safeName(p.Name)]++
	}
	out := make([]namedMember, 0, len(peers))
	for _, p := range peers {
		name := safeName(p.Name)
		if count[name] > 1 {
			name += " (" + p.ID.Short() + ")"
		}
		out = append(out, namedMember{name: name, id: p.ID})
	}
	slices.SortFunc(out, func(a, b namedMember) int { return strings.Compare(a.name, b.name) })
	return out
}

// memberNamed is the current member whose conversation is called name.
func (e *Engine) memberNamed(name string) (mesh.PeerID, bool) {
	for _, m := range e.namedMembers() {
		if m.name == name {
			return m.id, true
		}
	}
	return mesh.PeerID{}, false
}

// idOfLog is the member ID a conversation log is named after.
func idOfLog(path string) (mesh.PeerID, bool) {
	id, err := mesh.ParsePeerID(strings.TrimSuffix(filepath.Base(path), ".log"))
	return id, err == nil
}

// SayTo sends one private line to the member whose conversation is called
// name (Conversations), sealed to that member, and returns once it is on
// disk here, as Say does. A name that is no current member's fails with
// ErrNotMember (and fs.ErrNotExist).
func (e *Engine) SayTo(name, text string) error {
	t := e.transport()
	to, ok := e.memberNamed(name)
	if t == nil || !ok {
		return fmt.Errorf("say to %q: %w (%w)", name, ErrNotMember, iofs.ErrNotExist)
	}
	toKey, err := t.MemberKey(to)
	if err != nil {
		return fmt.Errorf("say to %q: %w: %w (%w)", name, ErrNotMember, err, iofs.ErrNotExist)
	}
	ownKey := t.SealKey().Public().(ed25519.PublicKey)
	m, clean, ok, durable, err := e.chat.StageTo(to, text, func(m record.Chat, text string) ([]byte, error) {
		return sealLine(m, text, ownKey, toKey)
	})
	if err != nil {
		return fmt.Errorf("say to %q: %w", name, err)
	}
	if !ok {
		return nil
	}
	e.own.push(m)
	if err := e.dm.add(to, m.Time, e.chat.SelfName(), clean); err != nil {
		e.log.Warn("private line not shown", "member", name, "err", err, "fix", fixState)
	}
	if err := durable(); err != nil {
		return fmt.Errorf("say to %q: %w", name, err)
	}
	return nil
}

// openReceived shows a private line to this member in its conversation,
// once the room stored it. A line to this member that does not open is
// kept (it holds its author's number) but shown nowhere, and logged: its
// author sealed it wrong, or sealed another's line into its own record.
func (e *Engine) openReceived(m record.Chat, from mesh.PeerID, name string) {
	t := e.transport()
	if m.To != t.ID() {
		return
	}
	text, err := openLine(m, t.SealKey())
	if err != nil {
		e.log.Warn("private line dropped", "peer", from, "author", name, "seq", m.Seq, "err", err,
			"fix", "nothing here: its author's build sealed it wrong or sealed another member's line; if it repeats, ask them")
		return
	}
	if err := e.dm.add(m.Author, m.Time, name, text); err != nil {
		e.log.Warn("private line not shown", "author", name, "err", err, "fix", fixState)
	}
}
