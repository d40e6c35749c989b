package mesh

import (
	"fmt"

	"github.com/meshfs/meshfs/internal/wire"
)

// finish ends decoding a payload: a malformed one is a protocol error.
func finish(d *wire.Decoder) error {
	if err := d.End(); err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return nil
}

// readPeerID reads a 32-byte ID (zero on a short input).
func readPeerID(d *wire.Decoder) PeerID {
	var id PeerID
	d.Into(id[:])
	return id
}
