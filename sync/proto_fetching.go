package sync

import (
	"fmt"

	"github.com/meshfs/meshfs/internal/wire"
	"github.com/meshfs/meshfs/mesh"
)

// maxFetchSources is the most members one FETCHING names: a receiver takes
// one file from a few members at once, never from the whole mesh.
const maxFetchSources = 16

// fetchingMsg tells a file's author where a receiver stands with it
// (protocol 5): the members it takes the file from now (From; none: it
// waits for one) and how many of the file's blocks it holds. It is display
// only: the author shows it instead of "queued" (fetching.go) and decides
// nothing on it.
type fetchingMsg struct {
	Author mesh.PeerID // the file's author, the member told
	ID     transferID
	Have   uint32 // blocks held, verified
	Blocks uint32 // blocks of the file
	From   []mesh.PeerID
}

func (m *fetchingMsg) encode() []byte {
	e := wire.Encoder{B: make([]byte, 0, 1+32+transferIDLen+4+4+1+32*len(m.From))}
	e.U8(uint8(kindFetching))
	e.Raw(m.Author[:])
	e.Raw(m.ID[:])
	e.U32(m.Have)
	e.U32(m.Blocks)
	e.U8(uint8(len(m.From)))
	for _, id := range m.From {
		e.Raw(id[:])
	}
	return e.B
}

// decodeFetching reads a FETCHING, checking its counts before it allocates
// the list of members.
func decodeFetching(d *wire.Decoder) (*fetchingMsg, error) {
	m := &fetchingMsg{}
	d.Into(m.Author[:])
	m.ID = readID(d)
	m.Have, m.Blocks = d.U32(), d.U32()
	n := int(d.U8())
	if d.Err() != nil {
		return nil, end(d)
	}
	switch {
	case m.Author.IsZero():
		return nil, fmt.Errorf("fetching without an author: %w", errProto)
	case m.Blocks > maxBlocks || m.Have > m.Blocks:
		return nil, fmt.Errorf("fetching %d of %d blocks: %w", m.Have, m.Blocks, errProto)
	case n > maxFetchSources:
		return nil, fmt.Errorf("fetching from %d members: %w", n, errProto)
	case d.Len() != n*len(mesh.PeerID{}):
		return nil, fmt.Errorf("fetching from %d members in %d bytes: %w", n, d.Len(), errProto)
	}
	if n > 0 {
		m.From = make([]mesh.PeerID, n)
		for i := range m.From {
			d.Into(m.From[i][:])
		}
	}
	return m, end(d)
}
