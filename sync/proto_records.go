package sync

import (
	"fmt"

	"github.com/meshfs/meshfs/internal/wire"
	"github.com/meshfs/meshfs/record"
)

// The room's messages (protocol 4). HAVE tells a member what this one
// holds; the member answers with RECORDS of what it holds beyond that,
// whoever wrote them, each author's in order. A new record goes out in
// RECORDS too, to every member connected (room.go).

// Limits of the room's messages, checked before anything is allocated.
const (
	maxReceiptsPerMsg = 4096      // receipts in one RECEIPTS message: 580 KiB
	maxRecordsPerMsg  = 256       // records in one RECORDS message
	maxRecordBytes    = 16 << 10  // one encoded record: 4 KiB of text and its header, with room
	recordsMsgBytes   = 512 << 10 // a sender fills a RECORDS message up to about this
)

// haveMsg is a version vector: author -> highest number held without a gap.
type haveMsg struct{ Vector record.Vector }

// recordsMsg carries records. More says the sender holds more beyond
// these for the vector it answered: ask again.
type recordsMsg struct {
	More    bool
	Records []record.Chat
}

func (m *haveMsg) encode() []byte {
	return append([]byte{byte(kindHave)}, m.Vector.Encode()...)
}

func (m *recordsMsg) encode() []byte {
	e := wire.Encoder{B: []byte{byte(kindRecords)}}
	var flags uint8
	if m.More {
		flags = 1
	}
	e.U8(flags)
	e.U16(uint16(len(m.Records)))
	for _, r := range m.Records {
		e.Blob(record.EncodeChat(r))
	}
	return e.B
}

func decodeHave(d *wire.Decoder) (*haveMsg, error) {
	v, err := record.DecodeVector(d.Rest())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errProto, err)
	}
	return &haveMsg{Vector: v}, nil
}

func decodeRecords(d *wire.Decoder) (*recordsMsg, error) {
	flags := d.U8()
	n := int(d.U16())
	if d.Err() == nil && (flags&^1 != 0 || n > maxRecordsPerMsg) {
		return nil, fmt.Errorf("records message with flags %#x and %d records: %w", flags, n, errProto)
	}
	m := &recordsMsg{More: flags&1 != 0}
	for range n {
		b := d.Blob(maxRecordBytes)
		if d.Err() != nil {
			break
		}
		r, err := record.DecodeChat(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errProto, err)
		}
		m.Records = append(m.Records, r)
	}
	return m, end(d)
}

// receiptsMsg carries signed receipts (receipts.go), whoever signed them.
type receiptsMsg struct{ Receipts []record.Receipt }

func (m *receiptsMsg) encode() []byte {
	e := wire.Encoder{B: make([]byte, 0, 3+len(m.Receipts)*record.ReceiptSize)}
	e.U8(uint8(kindReceipts))
	e.U16(uint16(len(m.Receipts)))
	for _, r := range m.Receipts {
		e.Raw(record.EncodeReceipt(r))
	}
	return e.B
}

func decodeReceipts(d *wire.Decoder) (*receiptsMsg, error) {
	n := int(d.U16())
	if d.Err() == nil && (n > maxReceiptsPerMsg || d.Len() != n*record.ReceiptSize) {
		return nil, fmt.Errorf("receipts message with %d receipts in %d bytes: %w", n, d.Len(), errProto)
	}
	m := &receiptsMsg{}
	for range n {
		r, err := record.DecodeReceipt(d.Take(record.ReceiptSize))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errProto, err)
		}
		m.Receipts = append(m.Receipts, r)
	}
	return m, end(d)
}
