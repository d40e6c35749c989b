package sync

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// protoCases are valid messages of every kind, for the round-trip table and
// as fuzz seeds.
func protoCases() []struct {
	name string
	msg  interface{ encode() []byte }
} {
	id := transferID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	author, sig := mesh.PeerID{9}, bytes.Repeat([]byte{5}, sigLen)
	have := newBitmap(3)
	have.set(0)
	have.set(2)
	return []struct {
		name string
		msg  interface{ encode() []byte }
	}{
		{"offer empty", &offerMsg{ID: id, Author: author, Sig: sig, Path: "e.txt", BlockSize: minBlockSize, Mode: 0o644, Blocks: []hash32{}}},
		{"offer three blocks", &offerMsg{ID: id, Author: author, Sig: sig, Path: "tree/sub/n.txt", Size: 2*minBlockSize + 1, BlockSize: minBlockSize,
			Mode: 0o755, MTime: -5, FileHash: hash32{9}, Blocks: []hash32{{1}, {2}, {3}}}},
		{"offer replacing", &offerMsg{ID: id, Author: author, Sig: sig, Path: "tree/HEAD", Size: 5, BlockSize: minBlockSize, Mode: 0o644,
			Replaces: []transferID{{1}, {2}}, FileHash: hash32{7}, Blocks: []hash32{{4}}}},
		{"offer streamed", &offerMsg{ID: id, Author: author, Path: "big.iso", Size: 3 * minBlockSize, BlockSize: minBlockSize,
			Mode: 0o644, Blocks: []hash32{}}},
		{"offer folder", &offerMsg{ID: id, Author: author, Sig: sig, Path: "tree/empty", BlockSize: minBlockSize, Mode: 0o755, Type: entryFolder, Blocks: []hash32{}}},
		{"offer link", &offerMsg{ID: id, Author: author, Sig: sig, Path: "tree/l", BlockSize: minBlockSize, Mode: 0o777, Type: entrySymlink,
			Target: "../f", Blocks: []hash32{}}},
		{"attr", &attrMsg{ID: id, Mode: 0o755}},
		{"accept", &acceptMsg{ID: id, Have: have}},
		{"accept none", &acceptMsg{ID: id, Have: newBitmap(0)}},
		{"reject", &rejectMsg{ID: id, Code: rejectNoSpace, Reason: "no space left on bob's disk: needs 64.0 MiB, 40.1 MiB free"}},
		{"chunk", &chunkMsg{ID: id, Index: 7, Data: []byte("hello")}},
		{"chunk of zeros", &chunkMsg{ID: id, Index: 8, Data: []byte{}}},
		{"piece", &chunkMsg{ID: id, Index: 9, Offset: 3 * pieceSize, Data: []byte("piece")}},
		{"done", &doneMsg{ID: id}},
		{"done with manifest", &doneMsg{ID: id, FileHash: hash32{7}, Sig: sig, Blocks: []hash32{{1}, {2}}}},
		{"receipts", &receiptsMsg{Receipts: []record.Receipt{{Receiver: mesh.PeerID{1}, Author: author, ID: id, Sig: sig}}}},
		{"ack", &ackMsg{ID: id}},
		{"have", &haveMsg{Vector: record.Vector{{1}: 42, {2}: 7}}},
		{"have nothing", &haveMsg{Vector: record.Vector{}}},
		{"records", &recordsMsg{Records: []record.Chat{testRecord(1, "one"), testRecord(2, "")}}},
		{"records more", &recordsMsg{More: true, Records: []record.Chat{testRecord(3, "three")}}},
		{"fetching", &fetchingMsg{Author: author, ID: id, Have: 3, Blocks: 8, From: []mesh.PeerID{{1}, {2}}}},
		{"fetching waiting", &fetchingMsg{Author: author, ID: id, Have: 3, Blocks: 8}},
	}
}

// testRecord is a well-formed chat record; its signature is not a real one
// (the codec does not check signatures, the room does).
func testRecord(seq uint64, text string) record.Chat {
	return record.Chat{Author: mesh.PeerID{9}, Seq: seq, Lamport: seq + 10, Time: time.Unix(1_700_000_000, int64(seq)),
		Text: text, Sig: bytes.Repeat([]byte{byte(seq)}, 64)}
}

func TestProtoRoundTrip(t *testing.T) {
	for _, tc := range protoCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.msg.encode()
			got, err := decodeMessage(b)
			if err != nil {
				t.Fatalf("decodeMessage(%x) = %v", b, err)
			}
			if !reflect.DeepEqual(got, tc.msg) {
				t.Errorf("decodeMessage(encode(%+v)) = %+v", tc.msg, got)
			}
		})
	}
}

func TestProtoRejects(t *testing.T) {
	a := mesh.PeerID{3}
	valid := (&offerMsg{Path: "a", Author: a, Size: 10, BlockSize: minBlockSize, Blocks: []hash32{{}}}).encode()
	tooMany := (&offerMsg{Path: "a", Author: a, Size: 10, BlockSize: minBlockSize, Blocks: []hash32{{}, {}}}).encode()
	small := (&offerMsg{Path: "a", Author: a, Size: 10, BlockSize: 1024, Blocks: []hash32{{}}}).encode()
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown kind", []byte{99}},
		{"truncated offer", valid[:len(valid)-1]},
		{"trailing byte", append(bytes.Clone(valid), 0)},
		{"block count mismatch", tooMany},
		{"block size too small", small},
		{"setuid mode", (&offerMsg{Path: "a", Author: a, BlockSize: minBlockSize, Mode: 0o4755}).encode()},
		{"huge path length", append([]byte{byte(kindOffer)}, append(make([]byte, 16), 0xff, 0xff)...)},
		{"accept padding", append((&acceptMsg{Have: newBitmap(3)}).encode()[:21], 0xff)},
		{"accept huge", append([]byte{byte(kindAccept)}, append(make([]byte, 16), 0xff, 0xff, 0xff, 0xff)...)},
		{"reject bad code", (&rejectMsg{Code: 0}).encode()},
		{"reject bad utf8", (&rejectMsg{Code: rejectIO, Reason: "\xff"}).encode()},
		{"done short", []byte{byte(kindDone), 1, 2}},
		{"streamed offer with a file hash", (&offerMsg{Path: "a", Author: a, Size: 10, BlockSize: minBlockSize, FileHash: hash32{1}}).encode()},
		{"done with zero hashes", append((&doneMsg{}).encode(), make([]byte, 32+sigLen+4)...)},
		{"offer without an author", (&offerMsg{Path: "a", Size: 10, BlockSize: minBlockSize, Blocks: []hash32{{}}}).encode()},
		{"offer with a short signature", (&offerMsg{Path: "a", Author: mesh.PeerID{1}, Sig: []byte{1}, BlockSize: minBlockSize}).encode()},
		{"receipts count short", (&receiptsMsg{Receipts: []record.Receipt{{Receiver: mesh.PeerID{1}, Author: mesh.PeerID{2}, Sig: make([]byte, sigLen)}}}).encode()[:10]},
		{"receipt from its own author", (&receiptsMsg{Receipts: []record.Receipt{{Receiver: mesh.PeerID{1}, Author: mesh.PeerID{1}, Sig: make([]byte, sigLen)}}}).encode()},
		{"done hashes short", (&doneMsg{Blocks: []hash32{{1}}}).encode()[:130]},
		{"done hashes long", append((&doneMsg{Blocks: []hash32{{1}}}).encode(), 0)},
		{"retired chat have", []byte{7, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"have long", append((&haveMsg{Vector: record.Vector{{1}: 1}}).encode(), 0)},
		{"have with seq 0", append([]byte{byte(kindHave), 0, 1}, make([]byte, 40)...)},
		{"records long", append((&recordsMsg{Records: []record.Chat{testRecord(1, "a")}}).encode(), 0)},
		{"records unknown flag", []byte{byte(kindRecords), 2, 0, 0}},
		{"records over the count", []byte{byte(kindRecords), 0, 1, 1}},
		{"records count short", (&recordsMsg{Records: []record.Chat{testRecord(1, "a"), testRecord(2, "b")}}).encode()[:4+4]},
		{"record with escapes", (&recordsMsg{Records: []record.Chat{testRecord(1, "\x1b[2Jhi")}}).encode()},
		{"chunk over a piece", (&chunkMsg{Data: make([]byte, pieceSize+1)}).encode()},
		{"piece beyond the largest block", (&chunkMsg{Offset: maxBlockSize - 4, Data: make([]byte, 5)}).encode()},
		{"piece offset overflow", (&chunkMsg{Offset: 1<<32 - 1, Data: make([]byte, 5)}).encode()},
		{"zero block at an offset", (&chunkMsg{Offset: pieceSize}).encode()},
		{"chunk short header", (&chunkMsg{}).encode()[:chunkHeaderLen-1]},
		{"folder with bytes", (&offerMsg{Path: "a", Size: 10, BlockSize: minBlockSize, Type: entryFolder, Blocks: []hash32{{}}}).encode()},
		{"link without target", (&offerMsg{Path: "a", BlockSize: minBlockSize, Type: entrySymlink}).encode()},
		{"file with target", (&offerMsg{Path: "a", BlockSize: minBlockSize, Target: "b"}).encode()},
		{"unknown entry type", (&offerMsg{Path: "a", BlockSize: minBlockSize, Type: 3}).encode()},
		{"replacing too many", (&offerMsg{Path: "a", BlockSize: minBlockSize, Replaces: make([]transferID, maxReplaces+1)}).encode()},
		{"folder replacing", (&offerMsg{Path: "a", BlockSize: minBlockSize, Type: entryFolder, Replaces: []transferID{{1}}}).encode()},
		{"attr setuid", (&attrMsg{Mode: 0o4755}).encode()},
		{"attr short", (&attrMsg{Mode: 0o644}).encode()[:19]},
		{"fetching from 17", (&fetchingMsg{Author: a, Blocks: 1, From: make([]mesh.PeerID, maxFetchSources+1)}).encode()},
		{"fetching more than held", (&fetchingMsg{Author: a, Have: 2, Blocks: 1}).encode()},
	}
	for _, tc := range tests {
		if m, err := decodeMessage(tc.in); err == nil || !errors.Is(err, errProto) {
			t.Errorf("%s: decodeMessage = %+v, %v, want protocol error", tc.name, m, err)
		}
	}
}

func TestRejectReasonTruncated(t *testing.T) {
	m := &rejectMsg{Code: rejectIO, Reason: strings.Repeat("é", maxReasonLen)}
	got, err := decodeMessage(m.encode())
	if err != nil {
		t.Fatalf("decodeMessage = %v", err)
	}
	if r := got.(*rejectMsg).Reason; len(r) > maxReasonLen || len(r) < maxReasonLen-1 {
		t.Errorf("reason length = %d, want about %d", len(r), maxReasonLen)
	}
}

// FuzzProto: the decoder never panics, and whatever it accepts encodes back
// to exactly the same bytes.
func FuzzProto(f *testing.F) {
	for _, tc := range protoCases() {
		f.Add(tc.msg.encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		enc := m.(interface{ encode() []byte }).encode()
		if !bytes.Equal(enc, b) {
			t.Fatalf("round trip: %x -> %+v -> %x", b, m, enc)
		}
	})
}

// TestRoughRTT: the peers file's RTT keeps one significant digit.
func TestRoughRTT(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, 0},
		{340 * time.Microsecond, 300 * time.Microsecond},
		{2600 * time.Microsecond, 3 * time.Millisecond},
		{2400 * time.Microsecond, 2 * time.Millisecond},
		{32 * time.Millisecond, 30 * time.Millisecond},
		{1500 * time.Millisecond, 2 * time.Second},
	} {
		if got := roughRTT(tc.in); got != tc.want {
			t.Errorf("roughRTT(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestShownRTT: the shown RTT follows the measured one only past a factor
// of two either way, and then at most once every rttShowEvery, for every
// member moved in that render; connecting and leaving show at once.
func TestShownRTT(t *testing.T) {
	var s shownRTTs
	ms := time.Millisecond
	t0 := time.Now()
	for i, tc := range []struct {
		who   string
		in    time.Duration
		after time.Duration // since t0: the render's time
		want  time.Duration
	}{
		{"bob", 2 * ms, 0, 2 * ms},                // first: at once
		{"bob", 3 * ms, time.Second, 2 * ms},      // within a factor of two
		{"bob", ms, 2 * time.Second, 2 * ms},      // half: still within
		{"bob", 5 * ms, 3 * time.Second, 5 * ms},  // first move: at once
		{"bob", 20 * ms, 4 * time.Second, 5 * ms}, // moved, but too soon
		{"bob", 20 * ms, rttShowEvery, 5 * ms},    // 30 s after t0, 27 s after the move
		{"bob", 20 * ms, rttShowEvery + 3*time.Second, 20 * ms},
		{"carol", 7 * ms, rttShowEvery + 4*time.Second, 7 * ms}, // a first RTT: at once
		{"bob", 0, rttShowEvery + 5*time.Second, 0},             // left: at once
		{"bob", ms, rttShowEvery + 6*time.Second, ms},           // back: at once
	} {
		if got := s.show(tc.who, tc.in, t0.Add(tc.after)); got != tc.want {
			t.Errorf("step %d: show(%s, %v) = %v, want %v", i, tc.who, tc.in, got, tc.want)
		}
	}
	// One render moves every member that moved.
	at := t0.Add(10 * rttShowEvery)
	if a, b := s.show("bob", 50*ms, at), s.show("carol", 70*ms, at); a != 50*ms || b != 70*ms {
		t.Errorf("one render moved bob to %v and carol to %v, want 50ms and 70ms", a, b)
	}
}
