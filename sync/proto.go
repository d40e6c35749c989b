package sync

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"unicode/utf8"

	"github.com/meshfs/meshfs/internal/wire"
	"github.com/meshfs/meshfs/mesh"
)

// kind is the first byte of every sync message carried in a BYTES frame.
type kind uint8

const (
	kindOffer  kind = 1 // sender -> receiver: manifest of one file
	kindAccept kind = 2 // receiver -> sender: send what I lack
	kindReject kind = 3 // receiver -> sender: will not take it
	kindChunk  kind = 4 // sender -> receiver: one block or a piece of one (bulk queue)
	kindDone   kind = 5 // sender -> receiver: every wanted block sent
	kindAck    kind = 6 // receiver -> sender: verified and in place
	// 7 was CHAT_HAVE (protocols 1 to 3), replaced by HAVE and RECORDS.
	kindHello    kind = 8  // either way, first on each connection: the sync protocol I speak
	kindAttr     kind = 9  // sender -> receiver: a delivered file's mode changed
	kindHave     kind = 10 // either way: the records I hold, per author (a version vector)
	kindRecords  kind = 11 // either way: signed records, each author's in order
	kindReceipts kind = 12 // either way: signed receipts, "I hold this file"
	kindFetching kind = 13 // receiver -> the file's author: whom I take it from, how far I am
)

// Version is the sync protocol this build speaks, sent in HELLO at the start
// of every connection. mesh carries it opaquely: a member that speaks
// another version is told apart here, and nothing is offered to it.
//
//	1: BLAKE3 block hashes, streamed manifests in DONE, CHAT_HAVE catch-up.
//	2: an OFFER names its entry type (file, folder, symbolic link) and a
//	   link's target; ATTR carries a delivered file's new mode; a CHUNK
//	   without data is a block of zeros; blocks grow to 64 MiB with the
//	   file (up to 1 TiB) and a CHUNK carries a piece of at most 1 MiB at
//	   an offset within its block.
//	3: an OFFER names the earlier transfers of its path that it replaces
//	   at a receiver holding one of them untouched (a file rewritten
//	   inside a folder before it moved to sent/, as git does .git/HEAD).
//	4: chat lines are records signed by their author (package record),
//	   carried in RECORDS whoever wrote them; HAVE (a version vector)
//	   replaces CHAT_HAVE, and the mesh's CHAT frames are no longer used.
//	   Every manifest is signed by its author and an OFFER names its
//	   author: a member passes on files of others (relay.go). RECEIPTS
//	   spread who holds which file (receipts.go).
//	5: FETCHING tells a file's author which members a receiver takes the
//	   file from; an ACCEPT may ask for part of the missing blocks (a
//	   window): a receiver takes one file's blocks from several members
//	   at once, each asked for its own windows, and a sender counts a
//	   resend round only when an ACCEPT asks again for a block it already
//	   sent.
//	6: RECORDS may carry private lines (record format 2): a recipient and
//	   a body sealed to it and the author (private.go). A member of 5
//	   would refuse the message whole, so versions 5 and 6 exchange
//	   nothing and each says so in its log.
const Version = 6

// Protocol limits, checked by the decoder before anything is allocated.
const (
	minBlockSize = 64 << 10 // smallest block size accepted
	maxBlockSize = 64 << 20 // largest block size accepted
	maxBlocks    = 1 << 16  // most blocks in one manifest the decoder takes
	// sendBlocks is the most blocks a sender puts in a manifest: its
	// OFFER or DONE (512 KiB of hashes) fits the mesh's 2 MiB BYTES cap.
	// A larger file gets larger blocks (chooseBlockSize).
	sendBlocks = maxBlocks / 4
	// pieceSize is the most data one CHUNK carries: a block larger than
	// it travels as several CHUNKs (pieces), each of which fits the BYTES
	// cap with its header. It is also the unit in which such a block is
	// read, hashed and written, so no side holds a whole block.
	pieceSize = 1 << 20
	// maxFileSize is the largest file sent: 16384 blocks of 64 MiB, 1 TiB.
	maxFileSize   = sendBlocks * maxBlockSize
	maxPathLen    = 4096 // longest relative path, bytes
	maxReplaces   = 8    // most earlier transfers one OFFER replaces
	maxReasonLen  = 1024 // longest REJECT reason, bytes
	transferIDLen = 16
	sigLen        = 64 // an Ed25519 signature
)

// hash32 is a 32-byte block or file hash (blockSum, fileHashOf); it is
// stored in JSON as hex.
type hash32 [32]byte

// MarshalText encodes the hash as hex.
func (h hash32) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, h[:]), nil }

// UnmarshalText decodes a hex hash.
func (h *hash32) UnmarshalText(b []byte) error { return decodeHexInto(h[:], b) }

// MarshalText encodes the ID as hex.
func (id transferID) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, id[:]), nil }

// UnmarshalText decodes a hex ID.
func (id *transferID) UnmarshalText(b []byte) error { return decodeHexInto(id[:], b) }

// decodeHexInto decodes exactly len(dst) bytes of hex.
func decodeHexInto(dst, src []byte) error {
	if hex.DecodedLen(len(src)) != len(dst) {
		return fmt.Errorf("hex of %d chars, want %d", len(src), 2*len(dst))
	}
	_, err := hex.Decode(dst, src)
	return err
}

// transferID identifies one outgoing transfer (one file, all its receivers).
type transferID [transferIDLen]byte

// String returns the ID in hex.
func (id transferID) String() string { return hex.EncodeToString(id[:]) }

// rejectCode says why a receiver refused a transfer.
type rejectCode uint8

const (
	rejectName    rejectCode = 1 // unsafe or unportable path: permanent
	rejectQuota   rejectCode = 2 // partial-bytes quota: permanent
	rejectNoSpace rejectCode = 3 // disk full: retried
	rejectBusy    rejectCode = 4 // too many concurrent transfers: retried
	rejectTooBig  rejectCode = 5 // over MaxFileSize: permanent
	rejectIO      rejectCode = 6 // read/write/verify failure: retried
	rejectKind    rejectCode = 7 // an entry type this member cannot hold: permanent
	rejectForged  rejectCode = 8 // the manifest is not signed by its author, or the author was removed: permanent
)

// permanent reports whether a sender should stop offering after this code.
func (c rejectCode) permanent() bool {
	return c == rejectName || c == rejectQuota || c == rejectTooBig || c == rejectKind || c == rejectForged
}

// String names the code.
func (c rejectCode) String() string {
	switch c {
	case rejectName:
		return "name"
	case rejectQuota:
		return "quota"
	case rejectNoSpace:
		return "nospace"
	case rejectBusy:
		return "busy"
	case rejectTooBig:
		return "toobig"
	case rejectIO:
		return "io"
	case rejectKind:
		return "kind"
	case rejectForged:
		return "forged"
	}
	return fmt.Sprintf("code%d", uint8(c))
}

// offerMsg is the manifest of one file, or one folder or symbolic link
// (Type; no blocks, Size 0). A streamed OFFER has no block hashes and a
// zero file hash: the sender hashes a large file while it sends it, and the
// manifest follows in DONE.
type offerMsg struct {
	ID        transferID
	Path      string // relative, '/'-separated
	Size      uint64
	BlockSize uint32
	Mode      uint32 // permission bits only
	MTime     int64  // unix nanoseconds
	Type      entryType
	Target    string // a symbolic link's target, relative and clean; else empty
	// Replaces names earlier transfers of the same path, newest first,
	// whose file the receiver replaces if it is still as placed (at most
	// maxReplaces; see outbound.go replacesOf).
	Replaces []transferID
	// Author is the member whose outbox the file came from: the sender,
	// or another member whose file the sender passes on (relay.go). Sig is
	// the author's signature of the manifest (record.File); a streamed
	// OFFER has none, its DONE brings it with the block hashes.
	Author mesh.PeerID
	// To is a private file's one recipient (zero: every member): the
	// blocks are a box sealed to it, Path names the box (private_files.go).
	To       mesh.PeerID
	Sig      []byte
	FileHash hash32
	Blocks   []hash32 // blockSum of each block; len == ceil(Size/BlockSize), or none if streamed
}

// streamed reports whether the manifest comes with DONE instead.
func (m *offerMsg) streamed() bool { return len(m.Blocks) == 0 && m.Size > 0 }

// acceptMsg asks for every block whose bit in Have is clear.
type acceptMsg struct {
	ID   transferID
	Have bitmap
}

// rejectMsg refuses a transfer.
type rejectMsg struct {
	ID     transferID
	Code   rejectCode
	Reason string
}

// chunkMsg carries one block, or one piece of a block larger than
// pieceSize at byte Offset within it; without Data, a block of zeros of the
// block's length (Offset 0).
type chunkMsg struct {
	ID     transferID
	Index  uint32
	Offset uint32 // of Data within block Index
	Data   []byte
}

// doneMsg says every requested block was sent. After a streamed OFFER it
// carries the manifest (file hash, the author's signature and the block
// hashes), which the receiver checks the blocks it holds against;
// otherwise Blocks is empty.
type doneMsg struct {
	ID       transferID
	FileHash hash32
	Sig      []byte
	Blocks   []hash32
}

// ackMsg says the file was verified, made durable and put in place.
type ackMsg struct{ ID transferID }

// helloMsg says which sync protocol version its sender speaks.
type helloMsg struct{ Version uint16 }

// attrMsg says the file delivered as transfer ID now has mode Mode: a
// chmod after the OFFER went out.
type attrMsg struct {
	ID   transferID
	Mode uint32 // permission bits only
}

// blockCount is ceil(size/blockSize).
func blockCount(size uint64, blockSize uint32) uint64 {
	if blockSize == 0 {
		return 0
	}
	return (size + uint64(blockSize) - 1) / uint64(blockSize)
}

// blockLen is the length of block i of a file of the given size.
func blockLen(size uint64, blockSize uint32, i uint32) int {
	start := uint64(i) * uint64(blockSize)
	return int(min(uint64(blockSize), size-start))
}

// encode functions: one per message, each returning a fresh slice.

func (m *offerMsg) encode() []byte {
	b := make([]byte, 0, 1+16+2+len(m.Path)+8+4+4+8+1+2+len(m.Target)+1+16*len(m.Replaces)+32+32+1+64+32+4+32*len(m.Blocks))
	b = append(b, byte(kindOffer))
	b = append(b, m.ID[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Path)))
	b = append(b, m.Path...)
	b = binary.BigEndian.AppendUint64(b, m.Size)
	b = binary.BigEndian.AppendUint32(b, m.BlockSize)
	b = binary.BigEndian.AppendUint32(b, m.Mode)
	b = binary.BigEndian.AppendUint64(b, uint64(m.MTime))
	b = append(b, byte(m.Type))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Target)))
	b = append(b, m.Target...)
	b = append(b, byte(len(m.Replaces)))
	for _, id := range m.Replaces {
		b = append(b, id[:]...)
	}
	b = append(b, m.Author[:]...)
	b = append(b, m.To[:]...)
	b = append(b, byte(len(m.Sig)))
	b = append(b, m.Sig...)
	b = append(b, m.FileHash[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Blocks)))
	for _, h := range m.Blocks {
		b = append(b, h[:]...)
	}
	return b
}

func (m *acceptMsg) encode() []byte {
	b := make([]byte, 0, 1+16+4+len(m.Have.bits))
	b = append(b, byte(kindAccept))
	b = append(b, m.ID[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(m.Have.n))
	return append(b, m.Have.bits...)
}

func (m *rejectMsg) encode() []byte {
	reason := truncateUTF8(m.Reason, maxReasonLen)
	b := make([]byte, 0, 1+16+1+2+len(reason))
	b = append(b, byte(kindReject))
	b = append(b, m.ID[:]...)
	b = append(b, byte(m.Code))
	b = binary.BigEndian.AppendUint16(b, uint16(len(reason)))
	return append(b, reason...)
}

// chunkHeaderLen is the size of a CHUNK message before its data.
const chunkHeaderLen = 1 + transferIDLen + 4 + 4

// appendChunkHeader appends the header of the CHUNK of block i of transfer
// id whose data starts at byte off of the block: the one place its layout
// is written.
func appendChunkHeader(b []byte, id transferID, i, off uint32) []byte {
	b = append(b, byte(kindChunk))
	b = append(b, id[:]...)
	b = binary.BigEndian.AppendUint32(b, i)
	return binary.BigEndian.AppendUint32(b, off)
}

func (m *chunkMsg) encode() []byte {
	b := appendChunkHeader(make([]byte, 0, chunkHeaderLen+len(m.Data)), m.ID, m.Index, m.Offset)
	return append(b, m.Data...)
}

func (m *doneMsg) encode() []byte {
	b := append([]byte{byte(kindDone)}, m.ID[:]...)
	if len(m.Blocks) == 0 {
		return b
	}
	b = append(b, m.FileHash[:]...)
	if len(m.Sig) == sigLen {
		b = append(b, m.Sig...)
	} else {
		b = append(b, make([]byte, sigLen)...) // no signature: one that never verifies
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Blocks)))
	for _, h := range m.Blocks {
		b = append(b, h[:]...)
	}
	return b
}

func (m *ackMsg) encode() []byte { return append([]byte{byte(kindAck)}, m.ID[:]...) }

func (m *helloMsg) encode() []byte {
	return binary.BigEndian.AppendUint16([]byte{byte(kindHello)}, m.Version)
}

func (m *attrMsg) encode() []byte {
	b := append([]byte{byte(kindAttr)}, m.ID[:]...)
	return binary.BigEndian.AppendUint32(b, m.Mode)
}

// readID reads a transfer ID.
func readID(d *wire.Decoder) (id transferID) {
	d.Into(id[:])
	return id
}

// end finishes decoding: a malformed message is a protocol error.
func end(d *wire.Decoder) error {
	if err := d.End(); err != nil {
		return fmt.Errorf("%w: %w", errProto, err)
	}
	return nil
}

// decodeMessage parses one sync message. It never panics and allocates at
// most what the length-checked message itself holds.
func decodeMessage(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("empty message: %w", errProto)
	}
	r := &wire.Decoder{B: b[1:]}
	switch kind(b[0]) {
	case kindOffer:
		return decodeOffer(r)
	case kindAccept:
		return decodeAccept(r)
	case kindReject:
		return decodeReject(r)
	case kindChunk:
		return decodeChunk(r)
	case kindDone:
		return decodeDone(r)
	case kindAck:
		m := &ackMsg{ID: readID(r)}
		return m, end(r)
	case kindHave:
		return decodeHave(r)
	case kindRecords:
		return decodeRecords(r)
	case kindReceipts:
		return decodeReceipts(r)
	case kindFetching:
		return decodeFetching(r)
	case kindHello:
		m := &helloMsg{Version: r.U16()}
		return m, end(r)
	case kindAttr:
		m := &attrMsg{ID: readID(r), Mode: r.U32()}
		if r.Err() == nil && m.Mode&^0o777 != 0 {
			return nil, fmt.Errorf("mode %o: %w", m.Mode, errProto)
		}
		return m, end(r)
	}
	return nil, fmt.Errorf("unknown message kind %d: %w", b[0], errProto)
}

func decodeOffer(r *wire.Decoder) (*offerMsg, error) {
	m := &offerMsg{ID: readID(r)}
	pathLen := int(r.U16())
	if pathLen > maxPathLen {
		return nil, fmt.Errorf("path of %d bytes: %w", pathLen, errProto)
	}
	m.Path = string(r.Take(pathLen))
	m.Size = r.U64()
	m.BlockSize = r.U32()
	m.Mode = r.U32()
	m.MTime = int64(r.U64())
	m.Type = entryType(r.U8())
	targetLen := int(r.U16())
	if targetLen > maxPathLen {
		return nil, fmt.Errorf("link target of %d bytes: %w", targetLen, errProto)
	}
	m.Target = string(r.Take(targetLen))
	if n := int(r.U8()); n > maxReplaces {
		return nil, fmt.Errorf("%d replaced transfers: %w", n, errProto)
	} else if n > 0 {
		m.Replaces = make([]transferID, n)
		for i := range m.Replaces {
			m.Replaces[i] = readID(r)
		}
	}
	r.Into(m.Author[:])
	if r.Err() == nil && m.Author.IsZero() {
		return nil, fmt.Errorf("offer without an author: %w", errProto)
	}
	r.Into(m.To[:])
	if r.Err() == nil && (m.To == m.Author || !m.To.IsZero() && m.Type != entryFile) {
		return nil, fmt.Errorf("private offer to its author or of type %d: %w", m.Type, errProto)
	}
	if n := int(r.U8()); n != 0 && n != sigLen {
		return nil, fmt.Errorf("manifest signature of %d bytes: %w", n, errProto)
	} else if n > 0 {
		m.Sig = r.Fixed(sigLen)
	}
	r.Into(m.FileHash[:])
	n := r.U32()
	if r.Err() != nil {
		return nil, r.Err()
	}
	if err := checkEntry(m, n); err != nil {
		return nil, err
	}
	if m.BlockSize < minBlockSize || m.BlockSize > maxBlockSize {
		return nil, fmt.Errorf("block size %d: %w", m.BlockSize, errProto)
	}
	if m.Mode&^0o777 != 0 {
		return nil, fmt.Errorf("mode %o: %w", m.Mode, errProto)
	}
	want := blockCount(m.Size, m.BlockSize)
	if want > maxBlocks || (uint64(n) != want && !(n == 0 && m.FileHash == hash32{})) {
		return nil, fmt.Errorf("%d block hashes for %d bytes: %w", n, m.Size, errProto)
	}
	m.Blocks = readHashes(r, n)
	return m, end(r)
}

// decodeChunk reads a CHUNK: a piece of at most pieceSize within the
// largest block, or no data (a block of zeros, zero.go) at offset 0. The
// receiver checks it against its block's real length.
func decodeChunk(r *wire.Decoder) (*chunkMsg, error) {
	m := &chunkMsg{ID: readID(r), Index: r.U32(), Offset: r.U32()}
	if r.Err() != nil {
		return nil, end(r)
	}
	n := r.Len()
	switch {
	case n > pieceSize:
		return nil, fmt.Errorf("chunk of %d bytes: %w", n, errProto)
	case uint64(m.Offset)+uint64(n) > maxBlockSize:
		return nil, fmt.Errorf("chunk at %d beyond the largest block: %w", m.Offset, errProto)
	case n == 0 && m.Offset != 0:
		return nil, fmt.Errorf("zero block at offset %d: %w", m.Offset, errProto)
	}
	m.Data = r.Take(n)
	return m, end(r)
}

// decodeDone reads a DONE, with or without a manifest.
func decodeDone(r *wire.Decoder) (*doneMsg, error) {
	m := &doneMsg{ID: readID(r)}
	if r.Err() != nil || r.Len() == 0 {
		return m, end(r)
	}
	r.Into(m.FileHash[:])
	m.Sig = r.Fixed(sigLen)
	n := r.U32()
	if r.Err() == nil && (n == 0 || n > maxBlocks) {
		return nil, fmt.Errorf("DONE with %d block hashes: %w", n, errProto)
	}
	m.Blocks = readHashes(r, n)
	return m, end(r)
}

// readHashes reads n block hashes, which must be all that is left.
func readHashes(d *wire.Decoder, n uint32) []hash32 {
	if d.Err() == nil && d.Len() != int(n)*32 {
		d.Failf("block hashes length %d, want %d", d.Len(), int(n)*32)
	}
	if d.Err() != nil {
		return nil
	}
	hs := make([]hash32, n)
	for i := range hs {
		d.Into(hs[i][:])
	}
	return hs
}

func decodeAccept(r *wire.Decoder) (*acceptMsg, error) {
	m := &acceptMsg{ID: readID(r)}
	n := r.U32()
	if r.Err() == nil && n > maxBlocks {
		return nil, fmt.Errorf("bitmap of %d bits: %w", n, errProto)
	}
	bits := r.Take(int((n + 7) / 8))
	if err := end(r); err != nil {
		return nil, err
	}
	m.Have = newBitmap(int(n))
	copy(m.Have.bits, bits)
	if !m.Have.clean() {
		return nil, fmt.Errorf("bitmap padding set: %w", errProto)
	}
	return m, nil
}

func decodeReject(r *wire.Decoder) (*rejectMsg, error) {
	m := &rejectMsg{ID: readID(r), Code: rejectCode(r.U8())}
	n := int(r.U16())
	if n > maxReasonLen {
		return nil, fmt.Errorf("reason of %d bytes: %w", n, errProto)
	}
	reason := r.Take(n)
	if err := end(r); err != nil {
		return nil, err
	}
	if m.Code < rejectName || m.Code > rejectForged {
		return nil, fmt.Errorf("reject code %d: %w", m.Code, errProto)
	}
	if !utf8.Valid(reason) {
		return nil, fmt.Errorf("reason not utf-8: %w", errProto)
	}
	m.Reason = string(reason)
	return m, nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// bitmap is a fixed-size set of block indexes.
type bitmap struct {
	n    int
	bits []byte
}

func newBitmap(n int) bitmap { return bitmap{n: n, bits: make([]byte, (n+7)/8)} }

func (b bitmap) has(i int) bool { return i >= 0 && i < b.n && b.bits[i/8]&(1<<(i%8)) != 0 }

func (b bitmap) set(i int) { b.bits[i/8] |= 1 << (i % 8) }

func (b bitmap) clear(i int) { b.bits[i/8] &^= 1 << (i % 8) }

// count returns how many bits are set.
func (b bitmap) count() int {
	c := 0
	for i := range b.n {
		if b.has(i) {
			c++
		}
	}
	return c
}

// clean reports whether the padding bits after n are all clear.
func (b bitmap) clean() bool {
	if b.n%8 == 0 || len(b.bits) == 0 {
		return true
	}
	return b.bits[len(b.bits)-1]>>(b.n%8) == 0
}
