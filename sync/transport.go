package sync

import (
	"context"
	"crypto"
	"crypto/ed25519"

	"github.com/meshfs/meshfs/mesh"
)

// Transport is what the engine needs from the network. *mesh.Node satisfies
// it; tests use an in-memory fake.
//
// Send* may block for back-pressure until ctx is done. The engine never
// reuses a slice after passing it to SendBytes, so an implementation may
// queue it without copying; SendBulk must copy (as *mesh.Node does): the
// engine reads the next block into the same buffer as soon as it returns.
// Likewise the engine copies what it keeps of a BytesReceived event.
type Transport interface {
	// ID is this node's own ID.
	ID() mesh.PeerID
	// Name is this node's display name.
	Name() string
	// Peers lists every known member but self, connected or offline.
	Peers() []mesh.PeerInfo
	// SendBytes queues a control message (priority queue) to one member.
	SendBytes(ctx context.Context, to mesh.PeerID, data []byte) error
	// SendBulk queues a bulk message (file chunks) to one member.
	SendBulk(ctx context.Context, to mesh.PeerID, data []byte) error
	// Signer signs with this node's member key (own chat records).
	Signer() crypto.Signer
	// SealKey is this node's member private key, which opens private
	// lines sealed to it (private.go).
	SealKey() ed25519.PrivateKey
	// MemberKey is a member's certified key, or an error for an unknown
	// or removed one: what a record second-hand is checked against.
	MemberKey(id mesh.PeerID) (ed25519.PublicKey, error)
}
