package mesh

import (
	"errors"
	"fmt"
	"log/slog"
)

// Sentinels callers branch on with errors.Is. ErrBadPeerID lives in types.go.
var (
	// ErrClosed is returned by a Node (or one of its connections) after Close.
	ErrClosed = errors.New("mesh node closed")
	// ErrUnknownPeer: the peer is not connected, or not a member.
	ErrUnknownPeer = errors.New("unknown or unconnected peer")
	// ErrNotAdmin: the operation needs the mesh CA key, which only the admin holds.
	ErrNotAdmin = errors.New("not the mesh admin")
	// ErrNeedInvite: this node is not a member yet and was given no invite token.
	ErrNeedInvite = errors.New("not a member of a mesh: an invite token is needed to join")
	// ErrInviteRefused wraps the admin's reason for refusing an invite.
	ErrInviteRefused = errors.New("invite refused")
	// ErrTooLarge: a payload is over the configured cap (Config.MaxBytes, 4 KiB chat).
	ErrTooLarge = errors.New("payload too large")
	// ErrBadInvite: the token string is malformed (not a refusal by the admin).
	ErrBadInvite = errors.New("malformed invite token")
	// ErrProtocol marks a peer that broke the wire protocol; its connection is closed.
	ErrProtocol = errors.New("protocol error")
	// ErrAdminUnreachable: the anchor a joiner reached cannot pass its JOIN
	// on to the admin now; the joiner tries again (Config.JoinRetryFor).
	ErrAdminUnreachable = errors.New("the admin is not reachable from this member; try again later")
	// ErrVersion marks a peer that speaks another mesh protocol version
	// (it also matches ErrProtocol): both need the same meshfs release.
	ErrVersion = errors.New("other mesh protocol version")
)

// reasonCode is the wire form of a reason carried by BYE and JOIN_ERR frames.
// Codes, not free text, cross the wire so that a peer cannot inject text into
// our logs or errors; unknown codes are shown as "unknown reason".
type reasonCode uint8

const (
	reasonUnknown reasonCode = iota
	reasonShutdown
	reasonDuplicate
	reasonReplaced
	reasonRevoked
	reasonProtocol
	reasonInviteExpired
	reasonInviteUsed
	reasonInviteUnknown
	reasonTooManyAttempts
	reasonTooManyPeers
	reasonNotMember
	reasonJoinFailed
	reasonAdminUnreachable
)

var reasonText = map[reasonCode]string{
	reasonUnknown:         "unknown reason",
	reasonShutdown:        "shutting down",
	reasonDuplicate:       "duplicate",
	reasonReplaced:        "replaced by a newer connection",
	reasonRevoked:         "revoked",
	reasonProtocol:        "protocol error",
	reasonInviteExpired:   "invite expired",
	reasonInviteUsed:      "invite already used",
	reasonInviteUnknown:   "unknown invite",
	reasonTooManyAttempts: "too many attempts",
	reasonTooManyPeers:    "too many peers",
	reasonNotMember:       "not a member",
	reasonJoinFailed:      "join failed",
	// An anchor answers this when it cannot pass a JOIN on to the admin.
	reasonAdminUnreachable: "the admin is not reachable from this member; try again later",
}

// String returns the fixed text for a code.
func (c reasonCode) String() string {
	if s, ok := reasonText[c]; ok {
		return s
	}
	return reasonText[reasonUnknown]
}

// ByeError is the error a connection ends with when the peer said BYE.
type ByeError struct {
	Reason string
	code   reasonCode
}

// errTrimmed ends a connection this node closed to keep the partial mesh
// within its bounds (overlay.go); the member stays in the mesh.
var errTrimmed = errors.New(reasonTooManyPeers.String())

func (e *ByeError) Error() string { return "peer closed the connection: " + e.Reason }

// protocolError returns an ErrProtocol-wrapping error with a reason.
func protocolError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// logLevelFor is how loud a failed connection is logged: a version mismatch
// is something the user must act on, the rest is routine churn.
func logLevelFor(err error) slog.Level {
	if errors.Is(err, ErrVersion) {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

// fixFor is the fix attribute logged with a failed connection to who: what
// a person can do about err.
func fixFor(err error, who string) string {
	if errors.Is(err, ErrVersion) {
		return "install the same meshfs version here and on " + who
	}
	return "nothing: connections are tried again"
}

// joinFix is the fix attribute logged when the admin refuses a joiner with
// code.
func joinFix(c reasonCode) string {
	switch c {
	case reasonInviteExpired, reasonInviteUsed, reasonInviteUnknown:
		return "if you know the joiner, give them a new invite (meshfs invite)"
	case reasonTooManyAttempts:
		return "nothing: attempts from that address are refused for a while; then it may try again"
	case reasonTooManyPeers:
		return "remove a member (meshfs remove) before admitting another"
	case reasonAdminUnreachable:
		return "check that this member reaches the admin (meshfs status); the joiner tries again"
	}
	return "nothing: the joiner may try again with a new invite (meshfs invite)"
}
