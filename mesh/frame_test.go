package mesh

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/wire"
)

// frameCases are the table of raw frames; FuzzFrame uses them as seeds.
var frameCases = []struct {
	name    string
	in      []byte
	wantErr error // nil: must decode; ErrProtocol or io error otherwise
}{
	{"ping", encodeFrame(framePing, make([]byte, capPing)), nil},
	{"empty peers req", encodeFrame(framePeersReq, nil), nil},
	{"chat at cap", encodeFrame(frameChat, make([]byte, capChat)), nil},
	{"chat over cap", encodeFrame(frameChat, make([]byte, capChat+1)), ErrProtocol},
	{"ping over cap", encodeFrame(framePing, make([]byte, capPing+1)), ErrProtocol},
	{"unknown type 0", encodeFrame(0, nil), ErrProtocol},
	{"unknown type 200", encodeFrame(200, []byte("x")), ErrProtocol},
	{"length 2^32-1", []byte{byte(frameBytes), 0xff, 0xff, 0xff, 0xff}, ErrProtocol},
	{"length 2^31 (negative as int32)", []byte{byte(frameChat), 0x80, 0, 0, 0}, ErrProtocol},
	{"truncated header", []byte{byte(framePing), 0, 0}, io.ErrUnexpectedEOF},
	{"truncated payload", encodeFrame(frameChat, []byte("hello"))[:7], io.ErrUnexpectedEOF},
	{"eof", nil, io.EOF},
	{"bytes at small cap", encodeFrame(frameBytes, make([]byte, 64)), nil},
	{"bytes over small cap", encodeFrame(frameBytes, make([]byte, 65)), ErrProtocol},
	{"join relay at cap", encodeFrame(frameJoinRelay, make([]byte, capJoinRelay)), nil},
	{"join relay over cap", encodeFrame(frameJoinRelay, make([]byte, capJoinRelay+1)), ErrProtocol},
	{"join relay result over cap", []byte{byte(frameJoinRelayResult), 0, 0x10, 0, 0x11}, ErrProtocol},
}

const testMaxBytes = 64

func TestReadFrame(t *testing.T) {
	for _, tc := range frameCases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := readFrame(bytes.NewReader(tc.in), testMaxBytes, nil)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("readFrame(%x) = %v, want nil", tc.in, err)
				}
				if got := encodeFrame(f.Type, f.Payload); !bytes.Equal(got, tc.in) {
					t.Fatalf("re-encoded %x, want %x", got, tc.in)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("readFrame(%x) = %v, want %v", tc.in, err, tc.wantErr)
			}
		})
	}
}

// TestReadFrameCapBeforeAlloc: a header claiming 4 GiB is refused without
// reading (or allocating) anything after the header.
func TestReadFrameCapBeforeAlloc(t *testing.T) {
	hdr := []byte{byte(frameBytes), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[1:], 1<<32-1)
	called := false
	_, err := readFrame(io.MultiReader(bytes.NewReader(hdr), neverReader{t}), 2<<20, func() { called = true })
	if !errors.Is(err, ErrProtocol) || called {
		t.Fatalf("readFrame(4 GiB header) = %v (afterHeader called %v), want ErrProtocol before payload", err, called)
	}
}

type neverReader struct{ t *testing.T }

func (r neverReader) Read([]byte) (int, error) {
	r.t.Error("payload read after an over-long header")
	return 0, io.EOF
}

func FuzzFrame(f *testing.F) {
	for _, tc := range frameCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			fr, err := readFrame(r, testMaxBytes, nil)
			if err != nil {
				return
			}
			if len(fr.Payload) > maxFor(fr.Type, testMaxBytes) {
				t.Fatalf("%v payload of %d over cap", fr.Type, len(fr.Payload))
			}
			again, err := readFrame(bytes.NewReader(encodeFrame(fr.Type, fr.Payload)), testMaxBytes, nil)
			if err != nil || again.Type != fr.Type || !bytes.Equal(again.Payload, fr.Payload) {
				t.Fatalf("round trip of %v: %v", fr.Type, err)
			}
		}
	})
}

// TestWireDecoder: every malformed payload is a protocol error.
func TestWireDecoder(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		read func(*wire.Decoder)
	}{
		{"short u64", []byte{1, 2, 3}, func(d *wire.Decoder) { d.U64() }},
		{"string over cap", append([]byte{0, 5}, "hello"...), func(d *wire.Decoder) { d.Str(4) }},
		{"string longer than input", []byte{0xff, 0xff, 'a'}, func(d *wire.Decoder) { d.Str(1 << 20) }},
		{"invalid utf-8", []byte{0, 2, 0xff, 0xfe}, func(d *wire.Decoder) { d.Str(10) }},
		{"blob 2^32-1", []byte{0xff, 0xff, 0xff, 0xff}, func(d *wire.Decoder) { d.Blob(1 << 30) }},
		{"trailing bytes", []byte{1, 2}, func(d *wire.Decoder) { d.U8() }},
		{"short id", []byte{1, 2}, func(d *wire.Decoder) { readPeerID(d) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := wire.Decoder{B: tc.in}
			tc.read(&d)
			if err := finish(&d); !errors.Is(err, ErrProtocol) {
				t.Fatalf("finish() = %v, want ErrProtocol", err)
			}
		})
	}
}

// payloadSeeds are valid payloads of every decoded type, prefixed by a
// selector byte for FuzzPayloads.
func payloadSeeds() [][]byte {
	chat, _ := encodeChat(Chat{Seq: 7, Time: time.Unix(1, 2), Text: "hi \x1b[31m"})
	revs := &revocationList{Version: 2, IssuedAt: time.Unix(5, 0), Revoked: []PeerID{{1}, {2}}, Sig: make([]byte, 64)}
	rec := &addrRecord{ID: PeerID{7}, IssuedAt: 42, Flags: recordAnchor, Addrs: []string{"203.0.113.9:8000", "[2001:db8::1]:8000"},
		Sig: make([]byte, recordSigLen)}
	relay := joinRelay{ID: 3, IP: "192.0.2.8", Exporter: make([]byte, 32), Cert: []byte{0x30, 1},
		Join: encodeJoin(joinRequest{TokenID: []byte{1, 2, 3, 4}, Proof: make([]byte, 32), Name: "d"})}
	return [][]byte{
		append([]byte{0}, encodeHello(hello{Version: protoVersion, Name: "alice", Addrs: []string{"127.0.0.1:8000", "[::1]:9"}, RevVersion: 3, Session: 9, Release: "v1.2.0", Observed: "192.0.2.1:5"})...),
		append([]byte{1}, encodePeers([]peerEntry{{ID: PeerID{7}, Cert: []byte{0x30, 1, 2}, Addrs: []string{"h:1"}, Linked: true}})...),
		append([]byte{2}, chat...),
		append([]byte{3}, revs.encode()...),
		append([]byte{4}, encodeJoin(joinRequest{TokenID: []byte{1, 2, 3, 4}, Proof: make([]byte, 32), Name: "c"})...),
		append([]byte{5}, encodeJoinOK(joinOK{Cert: []byte{1}, CA: []byte{2}, Peers: encodePeers(nil)})...),
		append([]byte{6}, encodeKeepalive(keepalive{Mono: 5, Wall: -1})...),
		append([]byte{7}, encodePunch(punch{Peer: PeerID{9}, Addr: "198.51.100.7:40000"})...),
		append([]byte{8}, encodeRecord(rec)...),
		append([]byte{1}, encodePeers([]peerEntry{{ID: PeerID{7}, Cert: []byte{0x30}, Addrs: []string{"h:1"}, Record: encodeRecord(rec)}})...),
		append([]byte{9}, encodeJoinRelay(relay)...),
		append([]byte{10}, encodeRelayResult(relayResult{ID: 3, Code: reasonAdminUnreachable})...),
		{1, 0, 1}, // PEERS with a truncated entry
		{0, 0, 1, 0, 5, 'a'},
	}
}

func FuzzPayloads(f *testing.F) {
	for _, s := range payloadSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		roundTrip(t, in[0]%11, in[1:])
	})
}

// roundTrip decodes p as the selected type; whatever decodes must encode
// back to something that decodes to the same value.
func roundTrip(t *testing.T, sel byte, p []byte) {
	var enc func() ([]byte, error)
	switch sel {
	case 0:
		h, err := decodeHello(p)
		enc = func() ([]byte, error) { return encodeHello(h), err }
	case 1:
		e, err := decodePeers(p)
		enc = func() ([]byte, error) { return encodePeers(e), err }
	case 2:
		c, err := decodeChat(p)
		enc = func() ([]byte, error) { b, _ := encodeChat(c); return b, err }
	case 3:
		l, err := decodeRevocations(p)
		enc = func() ([]byte, error) {
			if err != nil {
				return nil, err
			}
			return l.encode(), nil
		}
	case 4:
		j, err := decodeJoin(p)
		enc = func() ([]byte, error) { return encodeJoin(j), err }
	case 5:
		j, err := decodeJoinOK(p)
		enc = func() ([]byte, error) { return encodeJoinOK(j), err }
	case 6:
		k, err := decodeKeepalive(p)
		enc = func() ([]byte, error) { return encodeKeepalive(k), err }
	case 7:
		pu, err := decodePunch(p)
		enc = func() ([]byte, error) { return encodePunch(pu), err }
	case 8:
		r, err := decodeRecord(p)
		enc = func() ([]byte, error) {
			if err != nil {
				return nil, err
			}
			return encodeRecord(r), nil
		}
	case 9:
		r, err := decodeJoinRelay(p)
		enc = func() ([]byte, error) { return encodeJoinRelay(r), err }
	case 10:
		r, err := decodeRelayResult(p)
		enc = func() ([]byte, error) { return encodeRelayResult(r), err }
	}
	b, err := enc()
	if err != nil {
		return
	}
	if sel != 2 && !bytes.Equal(b, p) { // chat text is sanitised, so compare decoded values
		t.Fatalf("type %d: re-encoded %x, want %x", sel, b, p)
	}
	if sel == 2 {
		c1, _ := decodeChat(p)
		c2, err := decodeChat(b)
		if err != nil || c1 != c2 {
			t.Fatalf("chat round trip: %+v vs %+v (%v)", c1, c2, err)
		}
	}
}

func TestPayloadSeedsDecode(t *testing.T) {
	seeds := payloadSeeds()
	for i, s := range seeds[:len(seeds)-2] { // the last two are malformed
		roundTrip(t, s[0], s[1:]) // must not fail; and:
		var err error
		switch s[0] {
		case 0:
			_, err = decodeHello(s[1:])
		case 1:
			_, err = decodePeers(s[1:])
		case 2:
			_, err = decodeChat(s[1:])
		case 3:
			_, err = decodeRevocations(s[1:])
		case 4:
			_, err = decodeJoin(s[1:])
		case 5:
			_, err = decodeJoinOK(s[1:])
		case 6:
			_, err = decodeKeepalive(s[1:])
		case 7:
			_, err = decodePunch(s[1:])
		case 8:
			_, err = decodeRecord(s[1:])
		case 9:
			_, err = decodeJoinRelay(s[1:])
		case 10:
			_, err = decodeRelayResult(s[1:])
		}
		if err != nil {
			t.Errorf("seed %d: decode = %v, want nil", i, err)
		}
	}
}
