package sync

import "github.com/zeebo/blake3"

// Blocks larger than pieceSize arrive as several CHUNKs: the pieces of the
// block, in order, at the byte offset each names (send.go sendPieces). The
// receiver writes each piece to the partial at once and feeds it to the
// block's running hash; the block counts as held once its last piece
// matched the block's hash and every piece is written. A block that fails
// keeps its bit clear and is asked for again after DONE, like a corrupt
// small block. Memory per transfer is the peer's piece buffers
// (blockbuf.go) and a hasher per block in progress, whatever the block
// size: a 64 MiB block is never held whole.

// maxOpenBlocks bounds the blocks of one transfer whose pieces are
// arriving at once from one source. An honest sender sends one block at a time; a peer
// that starts more only makes the oldest start over.
const maxOpenBlocks = 2

// openBlock is a block whose pieces are arriving: next is how many of its
// bytes h has hashed, and where its next piece must start.
type openBlock struct {
	index uint32
	next  int
	h     *blake3.Hasher
}

// feedPiece hashes the piece at off of block i into the block's running
// hash and returns the block. A piece at offset 0 starts the block (over,
// if it was in progress: the sender began it again). Any other piece must
// continue where the block's hash is; one that does not is out of order,
// and the block is dropped (nil): it starts over with its first piece.
// Only s's receiver calls it: each source sends its blocks' pieces in
// order, whatever other sources send.
func (s *source) feedPiece(i uint32, off int, data []byte) *openBlock {
	b := s.openBlock(i)
	switch {
	case off == 0:
		s.dropBlock(i)
		b = s.startBlock(i)
	case b == nil || b.next != off:
		s.dropBlock(i)
		return nil
	}
	b.h.Write(data)
	b.next += len(data)
	return b
}

// openBlock returns block i's state if its pieces are arriving, else nil.
func (s *source) openBlock(i uint32) *openBlock {
	for _, b := range s.open {
		if b.index == i {
			return b
		}
	}
	return nil
}

// startBlock opens block i, dropping the oldest open block if there are
// maxOpenBlocks already.
func (s *source) startBlock(i uint32) *openBlock {
	if len(s.open) >= maxOpenBlocks {
		s.open = s.open[1:]
	}
	b := &openBlock{index: i, h: blake3.New()}
	s.open = append(s.open, b)
	return b
}

// dropBlock forgets block i's pieces so far, if any.
func (s *source) dropBlock(i uint32) {
	for k, b := range s.open {
		if b.index == i {
			s.open = append(s.open[:k], s.open[k+1:]...)
			return
		}
	}
}
