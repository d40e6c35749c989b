package mesh

import (
	"time"

	"github.com/meshfs/meshfs/internal/wire"
)

// keepalive is the payload of PING and PONG. The monotonic clock measures
// the round trip without trusting either wall clock; the wall clock lets
// the receiver estimate how far the sender's clock is from its own, which
// matters because certificates and revocation lists carry times.
type keepalive struct {
	Mono uint64 // the pinger's monotonic clock (Node.mono); a PONG echoes its PING's
	Wall int64  // the sender's wall clock when it wrote the frame, unix nanoseconds
}

func encodeKeepalive(k keepalive) []byte {
	var e wire.Encoder
	e.U64(k.Mono)
	e.U64(uint64(k.Wall))
	return e.B
}

// decodeKeepalive accepts exactly capPing bytes.
func decodeKeepalive(p []byte) (keepalive, error) {
	if len(p) != capPing {
		return keepalive{}, protocolError("keepalive of %d bytes, want %d", len(p), capPing)
	}
	d := wire.Decoder{B: p}
	k := keepalive{Mono: d.U64(), Wall: int64(d.U64())}
	return k, finish(&d)
}

// estimateSkew is how far ahead of ours the sender's clock is, from a
// frame stamped with their wall clock theirs and received at our wall
// clock received, given the round-trip time rtt. The frame was stamped
// about half a round trip before it arrived, so for a PONG this is
// their_time - (t_send + rtt/2), with t_send = received - rtt. The error
// is at most rtt/2 plus any asymmetry of the path. A wall clock absurdly
// far off saturates instead of wrapping around: Time.Sub clamps.
func estimateSkew(theirs, received time.Time, rtt time.Duration) time.Duration {
	return theirs.Sub(received.Add(-rtt / 2))
}
