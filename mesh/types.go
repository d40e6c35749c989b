package mesh

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// PeerID identifies a node: the SHA-256 of its public key (the certificate's
// SubjectPublicKeyInfo in DER). Hashing the key rather than the certificate
// lets the mesh CA re-issue a certificate without changing the ID.
type PeerID [32]byte

// idEncoding is lower-case base32 without padding: 52 characters for an ID,
// easy to read aloud and safe in file names.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// PeerIDFromKey returns the ID of the node whose SubjectPublicKeyInfo (DER) is spki.
func PeerIDFromKey(spki []byte) PeerID { return sha256.Sum256(spki) }

// ParsePeerID parses the full 52-character form that String returns.
func ParsePeerID(s string) (PeerID, error) {
	var id PeerID
	b, err := idEncoding.DecodeString(strings.ToLower(s))
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("parse peer id %q: %w", s, ErrBadPeerID)
	}
	copy(id[:], b)
	return id, nil
}

// String returns the full ID in lower-case base32.
func (id PeerID) String() string { return idEncoding.EncodeToString(id[:]) }

// Short returns the first 8 characters of String, for display and folder names.
func (id PeerID) Short() string { return id.String()[:8] }

// IsZero reports whether id is the zero value.
func (id PeerID) IsZero() bool { return id == PeerID{} }

// LogValue logs the short form; the full ID is too long for a log line.
func (id PeerID) LogValue() slog.Value { return slog.StringValue(id.Short()) }

// ErrBadPeerID is returned by ParsePeerID for malformed input.
var ErrBadPeerID = errors.New("not a peer id")

// PeerState says whether a member currently has a live connection.
type PeerState int

const (
	// Offline: a known member with no live connection.
	Offline PeerState = iota
	// Connected: a member with a live, authenticated connection.
	Connected
)

// String returns "connected" or "offline".
func (s PeerState) String() string {
	if s == Connected {
		return "connected"
	}
	return "offline"
}

// Link says how a member is reached.
type Link int

const (
	// LinkNone: no connection, and no connected member reports one.
	LinkNone Link = iota
	// LinkDirect: a connection one side dialed at an address the other
	// advertised (a listen, local or router-mapped address).
	LinkDirect
	// LinkPunched: a connection both sides dialed at once, through their
	// NATs, after a member connected to both introduced them.
	LinkPunched
	// LinkRelayed: no connection, but connected members (PeerInfo.Through)
	// report one: records and files reach it through them.
	LinkRelayed
)

// String returns "", "direct", "punched" or "relayed".
func (l Link) String() string {
	switch l {
	case LinkDirect:
		return "direct"
	case LinkPunched:
		return "punched"
	case LinkRelayed:
		return "relayed"
	}
	return ""
}

// PeerInfo is a snapshot of what a node knows about one other member.
type PeerInfo struct {
	ID       PeerID
	Name     string        // display name, sanitised; from the member certificate when connected
	State    PeerState     // Connected or Offline
	Addr     string        // address of the live connection, or the last known listen address
	RTT      time.Duration // last measured round-trip time (0 if never measured)
	LastSeen time.Time     // last frame received from this member (zero if never)
	Since    time.Time     // when the current connection was established (zero when offline)
	Outbound bool          // this node dialed the current connection (false when offline)
	Link     Link          // how it is reached
	// Transport is the live connection's transport, "tcp" or "quic" (a
	// connection punched over UDP); "" when there is none.
	Transport string
	// Through lists the connected members that report a connection to it,
	// when it has none with this node (Link is LinkRelayed); it is what
	// they say, a hint for routing and display.
	Through  []PeerID
	Sent     uint64 // bytes sent on connections to this member since start
	Received uint64 // bytes received on connections from this member since start
	Release  string // the member's meshfs release from its HELLO ("" when offline)
	// Skew is how far the member's wall clock is ahead of ours (negative:
	// behind), estimated from the last PING or PONG; valid when SkewKnown.
	Skew      time.Duration
	SkewKnown bool
	// Anchor says the member's newest verified address record marks it an
	// anchor: a member with a stable address that joiners may join
	// through (Config.Anchor).
	Anchor bool
}

// Chat is one chat message. Seq and Time are set by the sender; a receiver
// uses (sender, Seq) to recognise a message it already has. Seq 0 means
// "unordered" for programs that do not keep a log.
type Chat struct {
	Seq  uint64
	Time time.Time
	Text string
}

// Event is something that happened on the mesh: one of PeerConnected,
// PeerDisconnected, PeerRemoved, ChatReceived or BytesReceived.
type Event interface{ isEvent() }

// PeerConnected: the first authenticated connection to a member came up.
type PeerConnected struct{ Peer PeerInfo }

// PeerDisconnected: the last connection to a member went down.
type PeerDisconnected struct {
	Peer PeerInfo
	Err  error // why, when known
}

// Left reports whether the member left, as far as this node can tell: not
// when either side closed the connection to keep a partial mesh within its
// bounds (the member is reached through others), nor when another
// connection of the same member replaced it or was kept instead.
func (d PeerDisconnected) Left() bool {
	var bye *ByeError
	switch {
	case errors.Is(d.Err, errReplaced), errors.Is(d.Err, errTrimmed):
		return false
	case errors.As(d.Err, &bye):
		return bye.code != reasonTooManyPeers && bye.code != reasonReplaced && bye.code != reasonDuplicate
	}
	return true
}

// PeerRemoved: the admin revoked a member; it is refused from now on.
type PeerRemoved struct{ Peer PeerInfo }

// ChatReceived: a member sent a chat message.
type ChatReceived struct {
	From PeerInfo
	Chat Chat
}

// BytesReceived: a member sent application bytes (a BYTES frame). Data is
// only valid until HandleEvent returns: the connection reads its next frame
// into the same buffer. Copy what you keep.
type BytesReceived struct {
	From PeerID
	Data []byte
}

func (PeerConnected) isEvent()    {}
func (PeerDisconnected) isEvent() {}
func (PeerRemoved) isEvent()      {}
func (ChatReceived) isEvent()     {}
func (BytesReceived) isEvent()    {}

// Handler receives a node's events. HandleEvent is called from the
// connection's reader goroutine (ChatReceived, BytesReceived) or the node's
// own goroutines (the others). It may block briefly to apply back-pressure:
// while it blocks, that peer's connection stops reading. It must not call back
// into the node in a way that waits for the same connection's reader.
type Handler interface {
	HandleEvent(e Event)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(Event)

// HandleEvent calls f(e).
func (f HandlerFunc) HandleEvent(e Event) { f(e) }
