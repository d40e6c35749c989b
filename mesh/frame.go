package mesh

import (
	"encoding/binary"
	"fmt"
	"io"
)

// frameType is the first byte of every frame.
type frameType uint8

const (
	frameHello frameType = iota + 1
	framePing
	framePong
	framePeersReq
	framePeers
	frameChat
	frameBytes
	frameRevocations
	frameJoin
	frameJoinOK
	frameJoinErr
	frameBye
	framePunchReq // since protocol 7: introduce me to this member
	framePunch    // since protocol 7: dial this member at this address now
	// Since protocol 7 too: an anchor passes a joiner's JOIN to the admin
	// and gets the answer back.
	frameJoinRelay
	frameJoinRelayResult
	frameCandidates // since protocol 8: the sender's UDP addresses, for introductions
)

var frameNames = [...]string{"", "HELLO", "PING", "PONG", "PEERS_REQ", "PEERS", "CHAT", "BYTES",
	"REVOCATIONS", "JOIN", "JOIN_OK", "JOIN_ERR", "BYE", "PUNCH_REQ", "PUNCH", "JOIN_RELAY", "JOIN_RELAY_RESULT", "CANDIDATES"}

func (t frameType) String() string {
	if int(t) < len(frameNames) && t != 0 {
		return frameNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// frameHeaderLen is type u8 + length u32.
const frameHeaderLen = 5

// Per-type payload caps. They are checked against the header before a single
// payload byte is allocated, so a peer cannot make us allocate more than the
// cap of the type it claims.
const (
	capPing        = 16 // PING and PONG: a keepalive payload
	capChatText    = 4 << 10
	capChat        = capChatText + 16
	capPeers       = 256 << 10 // 256 entries with a member certificate each
	capHello       = 4 << 10
	capRevocations = 256 << 10
	capJoin        = 4 << 10
	capJoinOK      = 1 << 20 // certificates, revocations and a PEERS payload
	capOther       = 4 << 10
	// JOIN_RELAY: request ID, IP, exporter, the joiner's certificate and
	// its JOIN; JOIN_RELAY_RESULT: request ID, code and a JOIN_OK payload.
	capJoinRelay       = 32 << 10
	capJoinRelayResult = capJoinOK + 16
)

// maxFor returns the payload cap of t, or -1 for an unknown type.
// maxBytes is the node's BYTES cap (Config.MaxBytes).
func maxFor(t frameType, maxBytes int) int {
	switch t {
	case framePing, framePong:
		return capPing
	case frameChat:
		return capChat
	case framePeers:
		return capPeers
	case frameHello:
		return capHello
	case frameRevocations:
		return capRevocations
	case frameJoin:
		return capJoin
	case frameJoinOK:
		return capJoinOK
	case frameBytes:
		return maxBytes
	case frameJoinRelay:
		return capJoinRelay
	case frameJoinRelayResult:
		return capJoinRelayResult
	case framePeersReq, frameJoinErr, frameBye, framePunchReq, framePunch, frameCandidates:
		return capOther
	}
	return -1
}

// frame is one decoded frame. Payload is owned by the receiver.
type frame struct {
	Type    frameType
	Payload []byte
}

// appendFrame encodes f after dst (header then payload).
func appendFrame(dst []byte, t frameType, payload []byte) []byte {
	dst = append(dst, byte(t))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// encodeFrame returns a new slice holding the whole frame.
func encodeFrame(t frameType, payload []byte) []byte {
	return appendFrame(make([]byte, 0, frameHeaderLen+len(payload)), t, payload)
}

// readFrame decodes one frame from r. afterHeader, if not nil, runs once the
// header is read and validated, before the payload is read: the connection
// uses it to switch from the idle deadline to the per-frame deadline.
func readFrame(r io.Reader, maxBytes int, afterHeader func()) (frame, error) {
	return readFrameInto(r, maxBytes, afterHeader, nil)
}

// readFrameInto is readFrame that reads a BYTES payload into *scratch,
// growing it when needed, instead of a new slice: a transfer's reader gets
// a 1 MiB frame per block, and allocating each anew cost more than the
// copy (fresh memory is slow to fault in on virtual machines, and the
// garbage made the collector run every few frames). The payload is then
// only valid until the next read.
func readFrameInto(r io.Reader, maxBytes int, afterHeader func(), scratch *[]byte) (frame, error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	t := frameType(hdr[0])
	n := binary.BigEndian.Uint32(hdr[1:])
	max := maxFor(t, maxBytes)
	if max < 0 {
		return frame{}, protocolError("unknown frame type %d", hdr[0])
	}
	if uint64(n) > uint64(max) {
		return frame{}, protocolError("%v frame of %d bytes over cap %d", t, n, max)
	}
	if afterHeader != nil {
		afterHeader()
	}
	var payload []byte
	if t == frameBytes && scratch != nil {
		if cap(*scratch) < int(n) {
			*scratch = make([]byte, n)
		}
		payload = (*scratch)[:n]
	} else {
		payload = make([]byte, n)
	}
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, fmt.Errorf("read %v payload: %w", t, err)
	}
	return frame{Type: t, Payload: payload}, nil
}
