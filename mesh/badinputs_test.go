package mesh

// The adversarial-peer harness: one t.Run per row of docs/bad-inputs.md that
// concerns the mesh layer (rows 1-25, 47-51 and 63; rows 26-46 are in
// sync/badinputs_test.go). An "evil peer" completes TLS with a valid,
// revoked, self-signed or no certificate and then sends crafted bytes. After
// each row the victim must be alive (a real member still talks to it), the
// evil connection closed with a reason, goroutines, open files and heap back
// within bounds, the roster free of invented members, and no stray file in
// the victim's state folder.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
	"github.com/meshfs/meshfs/internal/wire"
	"github.com/pion/stun/v3"
)

// victim is alice (the admin, under attack) with bob, an honest member
// connected to her; base is what alice's process looked like before.
type victim struct {
	a, b  *Node
	base  usage
	seq   atomic.Int64
	mu    sync.Mutex
	known map[PeerID]bool // real members the rows made (certificates issued)
}

// usage is what a row must not leave behind.
type usage struct {
	goroutines int
	fds        int
	heap       uint64
}

func measure() usage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ents, _ := os.ReadDir("/proc/self/fd")
	return usage{goroutines: runtime.NumGoroutine(), fds: len(ents), heap: ms.HeapInuse}
}

// Slack over the baseline once a row is over: the evil connection's
// goroutines and descriptors must be gone, and no row may keep more than a
// few MiB (the worst rows claim 256 MiB or 4 GiB).
const (
	slackGoroutines = 8
	slackFDs        = 8
	slackHeap       = 32 << 20
)

func newVictim(t *testing.T, edit func(*Config)) *victim {
	t.Helper()
	cfg := testConfig(t, "alice")
	cfg.HandshakeTimeout = time.Second
	cfg.FrameTimeout = time.Second
	cfg.WriteTimeout = 500 * time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	a := startNode(t, cfg)
	b := startNode(t, joinConfig(t, a, "bob"))
	fullMesh(t, a, b)
	return &victim{a: a, b: b, base: measure(), known: map[PeerID]bool{b.ID(): true}}
}

// issue makes a real member of alice's mesh (see issueFor) and records it.
func (v *victim) issue(t *testing.T, name string) *Node {
	z := issueFor(t, v.a, name)
	v.remember(z.ID())
	return z
}

// cert issues a member certificate for a key that never connects.
func (v *victim) cert(t *testing.T, name string) (PeerID, []byte) {
	id, der := memberCertFor(t, v.a, name)
	v.remember(id)
	return id, der
}

func (v *victim) remember(id PeerID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.known[id] = true
}

// check is the common assertion of every row.
func (v *victim) check(t *testing.T) {
	t.Helper()
	v.alive(t)
	if err := testutil.WaitFor(10*time.Second, func() error {
		u := measure()
		switch {
		case u.goroutines > v.base.goroutines+slackGoroutines:
			return fmt.Errorf("goroutines %d, baseline %d", u.goroutines, v.base.goroutines)
		case u.fds > v.base.fds+slackFDs:
			return fmt.Errorf("open files %d, baseline %d", u.fds, v.base.fds)
		case u.heap > v.base.heap+slackHeap:
			return fmt.Errorf("heap in use %d MiB, baseline %d MiB", u.heap>>20, v.base.heap>>20)
		}
		return nil
	}); err != nil {
		t.Errorf("resources not bounded: %v", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, p := range v.a.Peers() {
		if !v.known[p.ID] {
			t.Errorf("alice lists %s (%q), which is not a member of the mesh", p.ID.Short(), p.Name)
		}
	}
	noStrayFiles(t, v.a.cfg.StateDir)
}

// alive: bob's chat reaches alice, so her accept loop, reader and handler
// still work after the attack.
func (v *victim) alive(t *testing.T) {
	t.Helper()
	text := fmt.Sprintf("alive %d", v.seq.Add(1))
	if err := v.b.SendChat(t.Context(), v.a.ID(), Chat{Seq: uint64(v.seq.Load()), Text: text}); err != nil {
		t.Fatalf("alice is not reachable: %v", err)
	}
	if err := testutil.WaitFor(5*time.Second, func() error {
		for _, c := range rec(v.a).chats() {
			if c == text {
				return nil
			}
		}
		return errors.New("alice did not get bob's chat")
	}); err != nil {
		t.Fatal(err)
	}
}

// stateFiles are the only files the mesh package writes (temporary files
// of writeFileAtomic start with a dot and are renamed at once).
var stateFiles = map[string]bool{fileNodeKey: true, fileNodeCert: true, fileCACert: true, fileCAKey: true,
	fileRevocations: true, filePeers: true, fileInvites: true}

func noStrayFiles(t *testing.T, state string) {
	t.Helper()
	filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(state, p)
		if filepath.Dir(rel) != "mesh" || !stateFiles[d.Name()] && !strings.HasPrefix(d.Name(), ".") {
			t.Errorf("unexpected file in the state folder: %s", rel)
		}
		return nil
	})
}

// closeReason reads from an evil connection until it ends and says why: a
// BYE reason, a TLS alert or EOF. It fails if the node keeps it open.
func closeReason(t *testing.T, c net.Conn, br io.Reader, within time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	if br == nil {
		br = c
	}
	for {
		f, err := readFrame(br, 64<<20, nil)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("connection still open after %v", within)
		case err != nil:
			return err.Error()
		case f.Type == frameBye:
			code, _ := decodeReason(f.Payload)
			return "bye: " + code.String()
		}
	}
}

// wantReason checks that reason mentions one of the words.
func wantReason(t *testing.T, reason string, words ...string) {
	t.Helper()
	for _, w := range words {
		if strings.Contains(reason, w) {
			t.Logf("closed: %s", reason)
			return
		}
	}
	t.Errorf("closed with %q, want one of %q", reason, words)
}

// dialTLS connects to n with cfg and finishes the TLS handshake.
func dialTLS(t *testing.T, n *Node, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	raw, err := net.Dial("tcp", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(raw, cfg)
	return tc, tc.Handshake()
}

// memberTLS is a client config presenting z's member certificate.
func memberTLS(z *Node) *tls.Config {
	cfg := baseTLS(z.tlsCert())
	cfg.InsecureSkipVerify = true
	return cfg
}

// evilMember is a member connection the test drives by hand after HELLO.
func evilMember(t *testing.T, v *victim, z *Node) *handshakeResult {
	t.Helper()
	// The previous connection of z must be gone, or this one is refused
	// as a duplicate of the same session.
	if err := testutil.WaitFor(5*time.Second, func() error {
		if connectedTo(v.a, z.ID()) == nil {
			return errors.New("previous connection still registered")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	hs := fakeMember(t, z, v.a)
	if err := testutil.WaitFor(5*time.Second, func() error { return connectedTo(v.a, z.ID()) }); err != nil {
		t.Fatal(err)
	}
	return hs
}

// send writes raw bytes on an evil member connection.
func send(t *testing.T, hs *handshakeResult, b []byte) {
	t.Helper()
	hs.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := hs.conn.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// decoy is a TCP listener that counts the connections it gets: a target a
// node must not be tricked into dialing (or only with backoff).
type decoy struct {
	ln    net.Listener
	count atomic.Int64
	wg    sync.WaitGroup
}

func newDecoy(t *testing.T) *decoy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &decoy{ln: ln}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.count.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); d.wg.Wait() })
	return d
}

func (d *decoy) addr() string { return d.ln.Addr().String() }

// memberCertFor issues a member certificate of a's mesh for a fresh key
// that never connects: a real member the attacker names in PEERS.
func memberCertFor(t *testing.T, a *Node, name string) (PeerID, []byte) {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := issueCert(a.ident.ca, a.ident.caKey, pub, name)
	if err != nil {
		t.Fatal(err)
	}
	return peerIDOf(cert), cert.Raw
}

func TestBadInputsMesh(t *testing.T) {
	v := newVictim(t, nil)
	rows := []struct {
		name string
		run  func(t *testing.T, v *victim)
	}{
		{"row 01: plaintext client speaking the old protocol", row01Plaintext},
		{"row 02: TLS client with no client cert", row02NoCert},
		{"row 03: self-signed cert not issued by the mesh CA", row03SelfSigned},
		{"row 04: revoked member cert, live connection dropped", row04Revoked},
		{"row 05: TLS 1.2-only client, missing or wrong ALPN", row05TLS12ALPN},
		{"row 06: handshake flood of silent connections", row06Flood},
		{"row 07: slowloris during the handshake", row07SlowHandshake},
		{"row 08: post-auth slowloris inside a frame", row08SlowFrame},
		{"row 09: 256 MiB of garbage with no terminator", row09Garbage},
		{"row 10: length field 2^32-1 or negative", row10Length},
		{"row 11: unknown type, truncated frame, EOF mid-frame", row11Truncated},
		{"row 12: frames out of state", row12OutOfState},
		{"row 13: chat text that looks like commands", row13ChatCommands},
		{"row 14: chat of 1 MiB, newlines, NUL, escapes, bidi, bad UTF-8", row14ChatHostile},
		{"row 15: chat, PING and PEERS_REQ flood", row15Flood},
		{"row 16: duplicate node ID from two places at once", row16Duplicate},
		{"row 17: ID and name spoofing", row17Spoofing},
		{"row 18: connecting to yourself", row18Self},
		{"row 19: PEERS with no port, IPv6, 10k entries, huge strings", row19PeersMalformed},
		{"row 20: PEERS naming arbitrary hosts and invented members", row20PeersInvented},
		{"row 21: PEERS gives a real member the victim's address", row21PeersRedirect},
		{"row 22: forged listen address in HELLO", row22ForgedListen},
		{"row 23: MitM on --join", row23JoinMitM},
		{"row 24: invite token wrong, expired, reused, brute-forced", row24Invite},
		{"row 25: revocation rollback or list signed by a non-admin", row25Rollback},
		{"row 47: peer that never reads", row47NeverReads},
		{"row 48: slow reader while a large transfer runs", row48SlowReader},
		{"row 49: slow local consumer", row49SlowConsumer},
		{"row 50: concurrent senders on one connection", row50Concurrent},
		{"row 51: removed member rejoins with old cert or used invite", row51Rejoin},
		{"row 63: forged, re-signed, stale and oversized address records", row63Records},
		{"row 64: malformed UDP candidates, and a STUN flood", row64Candidates},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) { r.run(t, v) })
	}
}

func row01Plaintext(t *testing.T, v *victim) {
	c, err := net.Dial("tcp", v.a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "ID:%s:mallory\nPEERS:127.0.0.1:1\n", v.b.ID())
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("plaintext client still connected after 10s")
	}
	t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
	v.check(t)
}

func row02NoCert(t *testing.T, v *victim) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{alpn}, InsecureSkipVerify: true}
	tc, err := dialTLS(t, v.a, cfg)
	if err == nil {
		wantReason(t, closeReason(t, tc, nil, 5*time.Second), "certificate")
	}
	v.check(t)
}

func row03SelfSigned(t *testing.T, v *victim) {
	tc, err := dialTLS(t, v.a, selfSignedTLS(t, nil))
	if err != nil {
		t.Fatalf("client handshake = %v; TLS 1.3 reports the refusal on first read", err)
	}
	wantReason(t, closeReason(t, tc, nil, 5*time.Second), "bad certificate", "certificate")
	v.check(t)
}

func row04Revoked(t *testing.T, v *victim) {
	z := v.issue(t, "revokee")
	hs := evilMember(t, v, z)
	if _, err := v.a.Remove(z.ID().String()); err != nil {
		t.Fatal(err)
	}
	wantReason(t, closeReason(t, hs.conn, hs.br, 5*time.Second), "revoked")
	tc, err := dialTLS(t, v.a, memberTLS(z))
	if err == nil {
		wantReason(t, closeReason(t, tc, nil, 5*time.Second), "certificate", "revoked")
	}
	if err := testutil.WaitFor(5*time.Second, func() error {
		if v.b.isRevoked(z.ID()) {
			return nil
		}
		return errors.New("bob did not get the list")
	}); err != nil {
		t.Fatal(err)
	}
	v.check(t)
}

func row05TLS12ALPN(t *testing.T, v *victim) {
	z := v.issue(t, "oldtls")
	cases := map[string]func(*tls.Config){
		"tls 1.2":    func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12 },
		"no alpn":    func(c *tls.Config) { c.NextProtos = nil },
		"wrong alpn": func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} },
	}
	for name, mutate := range cases {
		cfg := memberTLS(z)
		mutate(cfg)
		tc, err := dialTLS(t, v.a, cfg)
		if err != nil {
			t.Logf("%s: refused in the handshake: %v", name, err)
			continue
		}
		wantReason(t, closeReason(t, tc, nil, 5*time.Second), "alert", "alpn", "protocol", "certificate")
	}
	v.check(t)
}

// row06Flood is scaled down from 10k to 300 connections (the same
// behaviour, each beyond the caps is closed at once) to keep the suite fast.
func row06Flood(t *testing.T, v *victim) {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 300 {
		c, err := net.Dial("tcp", v.a.Addr().String())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, c)
	}
	if n := countOpen(v.a); n > v.a.cfg.MaxPendingPerIP {
		t.Errorf("%d connections in the handshake from one IP, cap %d", n, v.a.cfg.MaxPendingPerIP)
	}
	v.a.mu.Lock()
	waiting := len(v.a.queue)
	v.a.mu.Unlock()
	if waiting > v.a.cfg.MaxWaitingPerIP {
		t.Errorf("%d connections waiting from one IP, cap %d", waiting, v.a.cfg.MaxWaitingPerIP)
	}
	v.alive(t) // members are unaffected while the flood is held open
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if err := testutil.WaitFor(5*time.Second, func() error {
		if n := countOpen(v.a); n != 0 {
			return fmt.Errorf("%d pending slots still held", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	v.check(t)
}

func row07SlowHandshake(t *testing.T, v *victim) {
	c, err := net.Dial("tcp", v.a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, c)
	}()
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for closed := false; !closed; {
		select {
		case <-done:
			closed = true
		case <-tick.C:
			c.Write([]byte{0x16})
		case <-time.After(5 * time.Second):
			t.Fatal("slowloris still connected after 5s (handshake deadline 1s)")
		}
	}
	t.Logf("closed after %v", time.Since(start).Round(time.Millisecond))
	v.check(t)
}

func row08SlowFrame(t *testing.T, v *victim) {
	z := v.issue(t, "slowpost")
	hs := evilMember(t, v, z)
	hdr := []byte{byte(frameBytes), 0, 0x10, 0, 0} // 1 MiB promised
	send(t, hs, hdr)
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				hs.conn.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := hs.conn.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}
	}()
	reason := closeReason(t, hs.conn, hs.br, 5*time.Second)
	t.Logf("closed after %v (frame deadline 1s): %s", time.Since(start).Round(time.Millisecond), reason)
	v.check(t)
}

// row09Garbage: a frame header claiming 256 MiB, then garbage. The cap is
// checked before a byte is allocated: the process allocates far less than
// the claim while the row runs, and alice closes the connection instead of
// buffering what keeps coming.
func row09Garbage(t *testing.T, v *victim) {
	z := v.issue(t, "garbage")
	hs := evilMember(t, v, z)
	garbage := bytes.Repeat([]byte{'A'}, 1<<20)
	allocated := totalAlloc()
	send(t, hs, []byte{byte(frameChat), 0x10, 0, 0, 0})
	pushed := make(chan int, 1)
	go func() { // keep pushing: the node must close rather than buffer
		n := 0
		defer func() { pushed <- n }()
		for range 256 {
			hs.conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := hs.conn.Write(garbage); err != nil {
				return
			}
			n++
		}
	}()
	// The BYE may be lost to the reset that unread garbage causes.
	wantReason(t, closeReason(t, hs.conn, hs.br, 5*time.Second), "bye: protocol", "EOF", "reset")
	if n := <-pushed; n == 256 {
		t.Errorf("alice took all 256 MiB of garbage without closing the connection")
	}
	grew := totalAlloc() - allocated
	t.Logf("%d KiB allocated while the row ran", grew>>10)
	if grew > 64<<20 {
		t.Errorf("%d MiB allocated while a frame claimed 256 MiB; the cap must come first", grew>>20)
	}
	v.check(t)
}

// totalAlloc is the process's cumulative heap allocation in bytes.
func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

func row10Length(t *testing.T, v *victim) {
	z := v.issue(t, "length")
	for _, hdr := range [][]byte{
		{byte(frameBytes), 0xff, 0xff, 0xff, 0xff}, // 2^32-1
		{byte(frameBytes), 0x80, 0, 0, 0},          // negative as int32
		{byte(framePeers), 0x7f, 0xff, 0xff, 0xff},
	} {
		hs := evilMember(t, v, z)
		send(t, hs, hdr)
		wantReason(t, closeReason(t, hs.conn, hs.br, 5*time.Second), "bye: protocol")
	}
	v.check(t)
}

func row11Truncated(t *testing.T, v *victim) {
	z := v.issue(t, "trunc")
	hs := evilMember(t, v, z)
	send(t, hs, encodeFrame(99, nil))
	wantReason(t, closeReason(t, hs.conn, hs.br, 5*time.Second), "bye: protocol")

	hs = evilMember(t, v, z) // truncated: a CHAT header then half its payload, then EOF
	chat, _ := encodeChat(Chat{Seq: 1, Text: "never delivered"})
	f := encodeFrame(frameChat, chat)
	send(t, hs, f[:len(f)/2])
	hs.conn.(*tls.Conn).CloseWrite()
	closeReason(t, hs.conn, hs.br, 5*time.Second)
	for _, c := range rec(v.a).chats() {
		if c == "never delivered" {
			t.Error("a truncated chat frame was delivered")
		}
	}
	v.check(t)
}

func row12OutOfState(t *testing.T, v *victim) {
	z := v.issue(t, "order")
	// CHAT instead of HELLO, right after TLS.
	tc, err := dialTLS(t, v.a, memberTLS(z))
	if err != nil {
		t.Fatal(err)
	}
	chat, _ := encodeChat(Chat{Seq: 1, Text: "before hello"})
	tc.Write(encodeFrame(frameChat, chat))
	closeReason(t, tc, nil, 5*time.Second)
	// JOIN and a second HELLO on a ready connection.
	for _, f := range [][]byte{encodeFrame(frameJoin, nil), encodeFrame(frameHello, encodeHello(hello{Version: protoVersion}))} {
		hs := evilMember(t, v, z)
		send(t, hs, f)
		wantReason(t, closeReason(t, hs.conn, hs.br, 5*time.Second), "bye: protocol")
	}
	for _, c := range rec(v.a).chats() {
		if c == "before hello" {
			t.Error("chat before hello was delivered")
		}
	}
	v.check(t)
}

func row13ChatCommands(t *testing.T, v *victim) {
	texts := []string{"PING", "PEERS:1.2.3.4:22", "BYTES:99", "REQUEST_PEERS"}
	for i, s := range texts {
		if err := v.b.SendChat(t.Context(), v.a.ID(), Chat{Seq: uint64(100 + i), Text: s}); err != nil {
			t.Fatal(err)
		}
	}
	if err := testutil.WaitFor(5*time.Second, func() error {
		got := strings.Join(rec(v.a).chats(), "|")
		for _, s := range texts {
			if !strings.Contains(got, s) {
				return fmt.Errorf("chat %q not delivered as text", s)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, e := range rec(v.a).snapshot() {
		if b, ok := e.(BytesReceived); ok && b.From == v.b.ID() {
			t.Errorf("chat text turned into %d bytes of data", len(b.Data))
		}
	}
	v.check(t)
}

func row14ChatHostile(t *testing.T, v *victim) {
	z := v.issue(t, "ansi")
	hs := evilMember(t, v, z)
	hostile := "a\nb\x00c\x1b[2J\x1b]0;pwned\x07d\u202ee\xff"
	var e wire.Encoder // a raw CHAT frame: the sender's own sanitising is bypassed
	e.U64(7)
	e.U64(uint64(time.Now().UnixNano()))
	e.Raw([]byte(hostile))
	send(t, hs, encodeFrame(frameChat, e.B))
	var got string
	if err := testutil.WaitFor(3*time.Second, func() error {
		for _, ev := range rec(v.a).snapshot() {
			if c, ok := ev.(ChatReceived); ok && c.From.ID == z.ID() {
				got = c.Chat.Text
				return nil
			}
		}
		if connectedTo(v.a, z.ID()) != nil {
			return nil // rejected: also fine
		}
		return errors.New("hostile chat neither delivered nor rejected")
	}); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(got, "\n\x00\x1b\x07\u202e") || !utf8Valid(got) {
		t.Errorf("hostile chat delivered unsanitised: %q", got)
	}
	t.Logf("delivered as %q", got)
	// 1 MiB chat: over the CHAT cap, closed before reading it.
	hs.conn.Close()
	hs = evilMember(t, v, z)
	send(t, hs, []byte{byte(frameChat), 0, 0x10, 0, 0})
	wantReason(t, closeReason(t, hs.conn, hs.br, 5*time.Second), "bye: protocol")
	v.check(t)
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func row15Flood(t *testing.T, v *victim) {
	z := v.issue(t, "flood")
	hs := evilMember(t, v, z)
	var flood bytes.Buffer
	for range 2000 {
		flood.Write(encodeFrame(framePeersReq, nil))
		flood.Write(encodeFrame(framePing, make([]byte, capPing)))
	}
	send(t, hs, flood.Bytes())
	var peers, pongs int
	hs.conn.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	for {
		f, err := readFrame(hs.br, 64<<20, nil)
		if err != nil {
			break
		}
		switch f.Type {
		case framePeers:
			peers++
		case framePong:
			pongs++
		}
	}
	t.Logf("2000 PEERS_REQ → %d PEERS, 2000 PING → %d PONG", peers, pongs)
	if peers > 3 || pongs > 20 {
		t.Errorf("answers not coalesced: %d PEERS, %d PONG", peers, pongs)
	}
	v.check(t)
}

// row16Duplicate: four connections with the same member certificate and
// session at once. Alice keeps exactly one; she closes every other one
// herself, saying why; once the losers' cleanup has run, the one she kept
// is still her entry for z and carries chat both ways.
func row16Duplicate(t *testing.T, v *victim) {
	z := v.issue(t, "twin")
	before := servingGoroutines()
	twins := dialTwins(t, v, z, 4)
	if err := testutil.WaitFor(5*time.Second, func() error {
		if err := connectedTo(v.a, z.ID()); err != nil {
			return err
		}
		if n := countOpen(v.a); n > 0 {
			return fmt.Errorf("%d handshakes still pending", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	winner := livePeer(v.a, z.ID())
	var kept *handshakeResult
	for _, hs := range twins {
		if hs.conn.LocalAddr().String() == winner.remote {
			kept = hs
			continue
		}
		wantReason(t, closeReason(t, hs.conn, hs.br, 5*time.Second), "bye: duplicate", "bye: replaced")
	}
	if kept == nil {
		t.Fatalf("alice's connection for z (%s) is none of the twins'", winner.remote)
	}
	// Every loser's servePeer has returned (its cleanup ran) when only the
	// winner's is left beside those that ran before the row.
	if err := testutil.WaitFor(5*time.Second, func() error {
		if n := servingGoroutines(); n != before+1 {
			return fmt.Errorf("%d connections served, want %d", n, before+1)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if p := livePeer(v.a, z.ID()); p != winner {
		t.Fatalf("a losing connection's cleanup replaced alice's entry for z (%v)", p)
	}
	twinChats(t, v, z, kept)
	kept.conn.Close()
	v.check(t)
}

// dialTwins makes n member connections of z to alice at once and returns
// those whose handshake completed; at least one must.
func dialTwins(t *testing.T, v *victim, z *Node, n int) []*handshakeResult {
	t.Helper()
	var wg sync.WaitGroup
	results := make([]*handshakeResult, n)
	for i := range results {
		wg.Go(func() {
			raw, err := net.Dial("tcp", v.a.Addr().String())
			if err != nil {
				return
			}
			t.Cleanup(func() { raw.Close() })
			results[i], _ = z.handshake(context.Background(), raw, true, v.a.ID())
		})
	}
	wg.Wait()
	var done []*handshakeResult
	for _, hs := range results {
		if hs != nil {
			done = append(done, hs)
		}
	}
	if len(done) == 0 {
		t.Fatal("no twin completed its handshake")
	}
	return done
}

// twinChats: a chat from alice arrives on the kept connection, and one
// sent on it reaches alice.
func twinChats(t *testing.T, v *victim, z *Node, kept *handshakeResult) {
	t.Helper()
	if err := v.a.SendChat(t.Context(), z.ID(), Chat{Seq: 1, Text: "to the twin"}); err != nil {
		t.Fatalf("alice cannot send to z after the duplicates: %v", err)
	}
	kept.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := readFrame(kept.br, 64<<20, nil)
		if err != nil {
			t.Fatalf("the kept connection ended before alice's chat: %v", err)
		}
		if c, err := decodeChat(f.Payload); f.Type == frameChat && err == nil && c.Text == "to the twin" {
			break
		}
	}
	chat, _ := encodeChat(Chat{Seq: 1, Text: "from the twin"})
	send(t, kept, encodeFrame(frameChat, chat))
	if err := testutil.WaitFor(5*time.Second, func() error {
		if !slices.Contains(rec(v.a).chats(), "from the twin") {
			return errors.New("alice did not get the kept connection's chat")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// servingGoroutines counts the goroutines in servePeer, one per registered
// connection of every node in this process, while it is served.
func servingGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "mesh.(*Node).servePeer(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

func row17Spoofing(t *testing.T, v *victim) {
	z := v.issue(t, "../../etc")
	hs := fakeMember(t, z, v.a)
	_ = hs
	if err := testutil.WaitFor(5*time.Second, func() error { return connectedTo(v.a, z.ID()) }); err != nil {
		t.Fatal(err)
	}
	for _, p := range v.a.Peers() {
		if p.ID == z.ID() && (strings.ContainsAny(p.Name, `/\`) || p.Name == ".." || p.Name == v.b.Name()) {
			t.Errorf("spoofed name %q accepted", p.Name)
		}
	}
	// Claiming bob's ID: a dial that expects bob's ID refuses z's cert.
	raw, err := net.Dial("tcp", v.a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	go func() { z.handshake(context.Background(), c1, false, PeerID{}) }()
	if _, err := v.b.handshake(context.Background(), c2, true, v.a.ID()); !errors.Is(err, errWrongID) {
		t.Errorf("dialing alice's ID and meeting z: %v, want errWrongID", err)
	}
	v.check(t)
}

func row18Self(t *testing.T, v *victim) {
	err := v.a.Connect(t.Context(), v.a.Addr().String())
	if err == nil {
		t.Fatal("Connect to own address succeeded")
	}
	t.Logf("self dial: %v", err)
	if connectedTo(v.a, v.a.ID()) == nil {
		t.Error("alice is connected to herself")
	}
	v.check(t)
}

func row19PeersMalformed(t *testing.T, v *victim) {
	z := v.issue(t, "gossip")
	id, cert := v.cert(t, "hint")
	entry := func(addrs ...string) []byte {
		var e wire.Encoder
		e.Raw(id[:])
		e.Blob(cert)
		e.U8(uint8(len(addrs)))
		for _, a := range addrs {
			e.Str(a)
		}
		e.U8(0)  // flags
		e.U32(0) // no address record
		return e.B
	}
	list := func(count int, entries ...[]byte) []byte {
		var e wire.Encoder
		e.U16(uint16(count))
		for _, x := range entries {
			e.Raw(x)
		}
		return e.B
	}
	bad := map[string][]byte{
		"no port":      list(1, entry("x")),
		"10k entries":  list(10000),
		"100KB string": list(1, entry(strings.Repeat("h", 100<<10)+":1")),
		"truncated":    list(2, entry("127.0.0.1:1")),
	}
	for name, payload := range bad {
		hs := evilMember(t, v, z)
		send(t, hs, encodeFrame(framePeers, payload))
		reason := closeReason(t, hs.conn, hs.br, 5*time.Second)
		if !strings.Contains(reason, "bye: protocol") {
			t.Errorf("%s: closed with %q, want a protocol error", name, reason)
		}
	}
	// An IPv6 literal is a valid hint.
	hs := evilMember(t, v, z)
	send(t, hs, encodeFrame(framePeers, list(1, entry("[::1]:9"))))
	if err := testutil.WaitFor(3*time.Second, func() error {
		v.a.mu.Lock()
		defer v.a.mu.Unlock()
		if m := v.a.roster[id]; m == nil || len(m.Addrs) != 1 || m.Addrs[0] != "[::1]:9" {
			return errors.New("ipv6 hint not learned")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	v.check(t)
}

// row20PeersInvented is the gap this harness found: a member inserting
// fake member IDs. An entry must carry a member certificate for its ID.
func row20PeersInvented(t *testing.T, v *victim) {
	z := v.issue(t, "liar")
	d := newDecoy(t)
	otherID, otherCert := memberCertFor(t, v.a, "real") // never named under its own ID
	_, ssKey, _ := ed25519.GenerateKey(rand.Reader)
	ss, err := selfSignedCert(ssKey, "selfie")
	if err != nil {
		t.Fatal(err)
	}
	foreign := newOffline(t, testConfig(t, "foreign")) // another mesh's member cert
	cases := map[string]peerEntry{
		"no certificate":         {ID: PeerID{1, 2, 3}, Addrs: []string{d.addr()}},
		"self-signed":            {ID: peerIDOf(ss.Leaf), Cert: ss.Leaf.Raw, Addrs: []string{d.addr()}},
		"another mesh":           {ID: foreign.ID(), Cert: foreign.ident.cert.Raw, Addrs: []string{d.addr()}},
		"real cert, invented id": {ID: PeerID{9}, Cert: otherCert, Addrs: []string{d.addr()}},
		"garbage certificate":    {ID: PeerID{8}, Cert: []byte("not der"), Addrs: []string{d.addr()}},
	}
	for name, pe := range cases {
		hs := evilMember(t, v, z)
		send(t, hs, encodeFrame(framePeers, encodePeers([]peerEntry{pe})))
		if r := closeReason(t, hs.conn, hs.br, 5*time.Second); !strings.Contains(r, "bye: protocol") {
			t.Errorf("%s: closed with %q, want a protocol error", name, r)
		}
	}
	// 1000 invented IDs in one list: none is learned.
	var many []peerEntry
	invented := map[PeerID]bool{otherID: true, foreign.ID(): true}
	for i := range 250 {
		id := PeerID{byte(i), 0xee}
		invented[id] = true
		many = append(many, peerEntry{ID: id, Cert: otherCert, Addrs: []string{d.addr()}})
	}
	hs := evilMember(t, v, z)
	send(t, hs, encodeFrame(framePeers, encodePeers(many)))
	closeReason(t, hs.conn, hs.br, 5*time.Second)
	v.a.mu.Lock()
	for id := range v.a.roster {
		// Only these IDs: a real member's ID has 0xee as its second byte
		// one time in 256.
		if invented[id] {
			t.Errorf("invented member %s learned", id.Short())
		}
	}
	v.a.mu.Unlock()
	if n := d.count.Load(); n != 0 {
		t.Errorf("alice dialed an address from invented entries %d times", n)
	}
	v.check(t)
}

// row21PeersRedirect: a real member's certificate with a decoy address.
// Alice dials it (a member hint) but the TLS ID check fails, with backoff.
func row21PeersRedirect(t *testing.T, v *victim) {
	z := v.issue(t, "redirect")
	d := newDecoy(t)
	id, cert := v.cert(t, "victimized")
	hs := evilMember(t, v, z)
	send(t, hs, encodeFrame(framePeers, encodePeers([]peerEntry{{ID: id, Cert: cert, Addrs: []string{d.addr()}}})))
	if err := testutil.WaitFor(3*time.Second, func() error {
		if d.count.Load() == 0 {
			return errors.New("member hint not dialed")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	start := d.count.Load()
	deadline := time.Now().Add(2 * time.Second)
	testutil.WaitFor(3*time.Second, func() error {
		if time.Now().Before(deadline) {
			return errors.New("observing")
		}
		return nil
	})
	dials := d.count.Load() - start
	t.Logf("decoy dialed %d times in 2s (redial backoff %v..%v)", dials, v.a.cfg.RedialMin, v.a.cfg.RedialMax)
	// With backoff the gap grows to RedialMax/2 at least (jitter). Alice
	// and bob (who learns the member from alice) both dial it.
	if limit := 2 * (int64(2*time.Second/(v.a.cfg.RedialMax/2)) + 6); dials > limit {
		t.Errorf("decoy dialed %d times in 2s (limit %d): no backoff", dials, limit)
	}
	if connectedTo(v.a, id) == nil {
		t.Error("the decoy passed as the member")
	}
	v.check(t)
}

func row22ForgedListen(t *testing.T, v *victim) {
	z := v.issue(t, "forger")
	z.cfg.Advertise = []string{"127.0.0.77:22"}
	evilMember(t, v, z)
	v.a.mu.Lock()
	m := v.a.roster[z.ID()]
	var addrs []string
	if m != nil {
		addrs = m.Addrs
	}
	v.a.mu.Unlock()
	t.Logf("stored as a hint for %s only: %v", z.ID().Short(), addrs)
	for _, p := range v.a.Peers() {
		if p.ID != z.ID() && p.Addr == "127.0.0.77:22" {
			t.Errorf("forged address attached to %s", p.Name)
		}
	}
	v.check(t)
}

func row64Candidates(t *testing.T, v *victim) {
	z := v.issue(t, "candid")
	bad := map[string][]byte{
		"five":       encodeAddrList([]string{"1.2.3.4:1", "1.2.3.4:2", "1.2.3.4:3", "1.2.3.4:4"}),
		"host name":  encodeAddrList([]string{"example.com:1"}),
		"port 0":     encodeAddrList([]string{"1.2.3.4:0"}),
		"no port":    encodeAddrList([]string{"1.2.3.4"}),
		"trailing":   append(encodeAddrList([]string{"1.2.3.4:1"}), 0),
		"truncated":  encodeAddrList([]string{"1.2.3.4:1"})[:4],
		"empty":      nil,
		"punch list": encodePunch(punch{Peer: z.ID(), Addr: "1.2.3.4:1", UDP: []string{"nonsense"}}),
	}
	bad["five"][0] = 5
	for name, payload := range bad {
		hs := evilMember(t, v, z)
		typ := frameCandidates
		if name == "punch list" {
			typ = framePunch
		}
		send(t, hs, encodeFrame(typ, payload))
		if r := closeReason(t, hs.conn, hs.br, 5*time.Second); !strings.Contains(r, "bye: protocol") {
			t.Errorf("%s: closed with %q, want bye: protocol", name, r)
		}
		hs.conn.Close()
	}
	if v.a.udp == nil {
		t.Fatal("the victim has no udp socket")
	}
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	to := net.UDPAddrFromAddrPort(udpAddrOf(t, v.a))
	for range 2000 { // STUN requests, garbage, QUIC-looking junk
		uc.WriteTo(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw, to)
		uc.WriteTo([]byte{0, 1, 0, 0xff, 0x21, 0x12}, to)
		uc.WriteTo(append([]byte{0xc0}, make([]byte, 1200)...), to)
	}
	uc.SetReadDeadline(time.Now().Add(time.Second))
	answers := 0
	for buf := make([]byte, 512); ; answers++ {
		if _, _, err := uc.ReadFrom(buf); err != nil {
			break
		}
	}
	if answers > 25 { // one per stunAnswerEvery while the flood lasted
		t.Errorf("%d answers to one source's flood of 2000 requests", answers)
	}
	t.Logf("%d answers to 2000 requests", answers)
	v.check(t)
}

func row23JoinMitM(t *testing.T, v *victim) {
	other := startNode(t, testConfig(t, "mitm")) // another mesh's admin
	cfg := joinConfig(t, v.a, "joiner")
	cfg.Join = []string{other.Addr().String()}
	err := joinErr(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "ca fingerprint mismatch") {
		t.Fatalf("join through a MitM = %v, want a ca fingerprint mismatch", err)
	}
	other.Close() // its own goroutines are not the victim's
	v.check(t)
}

func row24Invite(t *testing.T, v *victim) {
	used := joinConfig(t, v.a, "first")
	first := startNode(t, used)
	v.remember(first.ID())
	first.Close()
	expired, err := v.a.Invite(time.Nanosecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := parseToken(joinConfig(t, v.a, "x").Invite)
	wrong.secret[0] ^= 1
	for name, tok := range map[string]string{"reused": used.Invite, "expired": expired.Token, "wrong secret": wrong.String()} {
		cfg := testConfig(t, "mallory")
		cfg.Join, cfg.Invite = []string{v.a.Addr().String()}, tok
		if err := joinErr(t, cfg); !errors.Is(err, ErrInviteRefused) {
			t.Errorf("%s token: %v, want ErrInviteRefused", name, err)
		}
	}
	// Brute force: after JoinFailLimit failures even the right token is refused.
	for range v.a.cfg.JoinFailLimit {
		cfg := testConfig(t, "guess")
		cfg.Join, cfg.Invite = []string{v.a.Addr().String()}, wrong.String()
		joinErr(t, cfg)
	}
	right := joinConfig(t, v.a, "late")
	if err := joinErr(t, right); !errors.Is(err, ErrInviteRefused) || !strings.Contains(err.Error(), "attempts") {
		t.Errorf("after a brute-force run: %v, want refused for too many attempts", err)
	}
	v.a.invites.mu.Lock()
	clear(v.a.invites.fails)
	v.a.invites.mu.Unlock()
	v.check(t)
}

func row25Rollback(t *testing.T, v *victim) {
	z := v.issue(t, "roller")
	gone := v.issue(t, "gone")
	evilMember(t, v, gone)
	if _, err := v.a.Remove(gone.ID().String()); err != nil {
		t.Fatal(err)
	}
	cur := v.a.revocationBlob()
	older := &revocationList{Version: 1, IssuedAt: time.Now()}
	older.sign(v.a.ident.caKey)
	hs := evilMember(t, v, z)
	send(t, hs, encodeFrame(frameRevocations, older.encode()))
	v.alive(t)
	if !bytes.Equal(v.a.revocationBlob(), cur) {
		t.Error("an older list replaced the current one")
	}
	_, rogue, _ := ed25519.GenerateKey(rand.Reader)
	forged := &revocationList{Version: 999, IssuedAt: time.Now(), Revoked: []PeerID{v.b.ID()}}
	forged.sign(rogue)
	send(t, hs, encodeFrame(frameRevocations, forged.encode()))
	wantReason(t, closeReason(t, hs.conn, hs.br, 5*time.Second), "bye: protocol")
	if v.a.isRevoked(v.b.ID()) {
		t.Error("a list signed by a non-admin revoked bob")
	}
	v.check(t)
}

func row47NeverReads(t *testing.T, v *victim) {
	z := v.issue(t, "zombie")
	evilMember(t, v, z) // completes HELLO, then never reads
	sent := make(chan error, 1)
	go func() {
		chunk := make([]byte, 1<<20)
		for {
			if err := v.a.SendBulk(t.Context(), z.ID(), chunk); err != nil {
				sent <- err
				return
			}
		}
	}()
	select {
	case err := <-sent:
		if !errors.Is(err, ErrUnknownPeer) {
			t.Errorf("SendBulk to a peer that never reads = %v, want ErrUnknownPeer", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still blocked on a peer that never reads after 10s (write deadline 500ms)")
	}
	v.check(t)
}

// row48SlowReader: while a member reads slowly, 8 MiB to bob go at full speed.
func row48SlowReader(t *testing.T, v *victim) {
	z := v.issue(t, "slow")
	hs := evilMember(t, v, z)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // reads 4 KiB every 50 ms
		defer wg.Done()
		buf := make([]byte, 4<<10)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				hs.conn.SetReadDeadline(time.Now().Add(time.Second))
				hs.conn.Read(buf)
			}
		}
	}()
	go func() { // keeps the slow peer's queue full
		defer wg.Done()
		chunk := make([]byte, 256<<10)
		for {
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			err := v.a.SendBulk(ctx, z.ID(), chunk)
			cancel()
			select {
			case <-stop:
				return
			default:
			}
			if errors.Is(err, ErrUnknownPeer) {
				return
			}
		}
	}()
	before := len(rec(v.b).bytes())
	start := time.Now()
	chunk := make([]byte, 1<<20)
	for range 8 {
		if err := v.a.SendBulk(t.Context(), v.b.ID(), chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := testutil.WaitFor(5*time.Second, func() error {
		if n := len(rec(v.b).bytes()) - before; n < 8 {
			return fmt.Errorf("bob has %d of 8 MiB", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("8 MiB to bob in %v while a slow reader was served", time.Since(start).Round(time.Millisecond))
	close(stop)
	wg.Wait()
	hs.conn.Close()
	v.check(t)
}

// row49SlowConsumer: bob's handler is slow; alice's 300 messages all
// arrive, in order (the reader stops reading instead of dropping).
func row49SlowConsumer(t *testing.T, v *victim) {
	var got atomic.Int64
	var order atomic.Bool
	order.Store(true)
	slow := HandlerFunc(func(e Event) {
		if b, ok := e.(BytesReceived); ok && len(b.Data) == 8 {
			if int64(b.Data[7])|int64(b.Data[6])<<8 != got.Load() {
				order.Store(false)
			}
			got.Add(1)
			time.Sleep(time.Millisecond) // a slow disk or FUSE reader
		}
	})
	s := v.issue(t, "sluggish")
	s.cfg.Handler = slow
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Connect(t.Context(), v.a.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := testutil.WaitFor(10*time.Second, func() error { return connectedTo(v.a, s.ID()) }); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		msg := []byte{0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)}
		if err := v.a.SendBytes(t.Context(), s.ID(), msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := testutil.WaitFor(10*time.Second, func() error {
		if n := got.Load(); n != 300 {
			return fmt.Errorf("%d of 300 delivered", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !order.Load() {
		t.Error("messages reordered")
	}
	s.Close()
	v.check(t)
}

// row50Concurrent: 8 goroutines × 100 frames on one connection; every
// frame arrives whole, none turns into chat.
func row50Concurrent(t *testing.T, v *victim) {
	before := len(rec(v.b).bytes())
	chatsBefore := len(rec(v.b).chats())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				msg := bytes.Repeat([]byte{byte(g)}, 1000+i)
				if err := v.a.SendBytes(t.Context(), v.b.ID(), msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := testutil.WaitFor(5*time.Second, func() error {
		if n := len(rec(v.b).bytes()) - before; n != 800 {
			return fmt.Errorf("bob has %d of 800 frames", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, b := range rec(v.b).bytes()[before:] {
		if len(b) < 1000 || !bytes.Equal(b, bytes.Repeat(b[:1], len(b))) {
			t.Fatalf("interleaved frame of %d bytes", len(b))
		}
	}
	if n := len(rec(v.b).chats()) - chatsBefore; n != 0 {
		t.Errorf("%d spurious chats", n)
	}
	v.check(t)
}

func row51Rejoin(t *testing.T, v *victim) {
	cfg := joinConfig(t, v.a, "exile")
	x := startNode(t, cfg)
	v.remember(x.ID())
	fullMesh(t, v.a, v.b, x)
	if _, err := v.a.Remove(x.ID().String()); err != nil {
		t.Fatal(err)
	}
	if err := testutil.WaitFor(5*time.Second, func() error {
		if connectedTo(v.a, x.ID()) == nil || connectedTo(v.b, x.ID()) == nil {
			return errors.New("exile still connected")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{v.a, v.b} { // old certificate, at every member
		if err := x.Connect(t.Context(), n.Addr().String()); err == nil {
			t.Errorf("removed member reconnected to %s", n.Name())
		}
	}
	x.Close()
	again := testConfig(t, "exile")
	again.StateDir = t.TempDir() // a fresh key with the used invite
	again.Join, again.Invite = cfg.Join, cfg.Invite
	if err := joinErr(t, again); !errors.Is(err, ErrInviteRefused) {
		t.Errorf("rejoin with the used invite: %v, want ErrInviteRefused", err)
	}
	v.check(t)
}

// row63Records: zed passes on address records of roamer, a real member.
// A genuine newer record is taken; an older one is ignored; one whose
// fields changed after signing, one signed by zed in roamer's name, one
// about zed in roamer's entry, and oversized or malformed ones close the
// connection with a protocol error. Alice keeps the genuine record.
func row63Records(t *testing.T, v *victim) {
	z := v.issue(t, "zed")
	r := v.issue(t, "roamer")
	d := newDecoy(t)
	id, cert := r.ID(), r.ident.cert.Raw
	entry := func(rec *addrRecord) []byte {
		return encodeFrame(framePeers, encodePeers([]peerEntry{{ID: id, Cert: cert, Record: encodeRecord(rec)}}))
	}
	genuine := signRecord(r.ident.key, id, 2000, recordAnchor, []string{d.addr()})
	hs := evilMember(t, v, z)
	send(t, hs, entry(genuine))
	send(t, hs, entry(signRecord(r.ident.key, id, 1000, 0, []string{"192.0.2.1:1"}))) // stale
	pingPong(t, hs)
	hs.conn.Close()
	held := func() *addrRecord {
		v.a.mu.Lock()
		defer v.a.mu.Unlock()
		return v.a.roster[id].Record
	}
	if got := held(); got == nil || got.IssuedAt != 2000 {
		t.Fatalf("after a genuine and a stale record alice holds %+v, want the one of time 2000", got)
	}
	forged := *genuine
	forged.IssuedAt, forged.Addrs = 3000, []string{"192.0.2.66:1"}
	bad := map[string][]byte{
		"fields changed after signing":   entry(&forged),
		"signed by zed in roamer's name": entry(signRecord(z.ident.key, id, 4000, 0, []string{"192.0.2.66:1"})),
		"zed's record in roamer's entry": encodeFrame(framePeers, encodePeers([]peerEntry{{ID: id, Cert: cert,
			Record: signRecord(z.ident.key, z.ID(), 5000, 0, []string{"192.0.2.66:1"}).wire()}})),
		"record over the size cap": rawRecordEntry(id, cert, make([]byte, maxRecordLen+1)),
		"nine addresses":           entry(signRecord(r.ident.key, id, 6000, 0, slices.Repeat([]string{"192.0.2.66:1"}, 9))),
		"unknown flag bits":        entry(signRecord(r.ident.key, id, 7000, 0x80, []string{"192.0.2.66:1"})),
	}
	for name, frame := range bad {
		hs := evilMember(t, v, z)
		send(t, hs, frame)
		if reason := closeReason(t, hs.conn, hs.br, 5*time.Second); !strings.Contains(reason, "bye: protocol") {
			t.Errorf("%s: closed with %q, want a protocol error", name, reason)
		}
	}
	if got := held(); got == nil || got.IssuedAt != 2000 || !slices.Equal(got.Addrs, genuine.Addrs) {
		t.Errorf("after the bad records alice holds %+v, want the genuine one", got)
	}
	v.check(t)
}

// rawRecordEntry is a PEERS frame of one entry whose record blob is raw.
func rawRecordEntry(id PeerID, cert, raw []byte) []byte {
	var e wire.Encoder
	e.U16(1)
	e.Raw(id[:])
	e.Blob(cert)
	e.U8(0) // no address hints
	e.U8(0) // flags
	e.Blob(raw)
	return encodeFrame(framePeers, e.B)
}

// pingPong sends PING and reads until the PONG: every frame sent before
// it has been handled.
func pingPong(t *testing.T, hs *handshakeResult) {
	t.Helper()
	send(t, hs, encodeFrame(framePing, encodeKeepalive(keepalive{Mono: 1, Wall: time.Now().UnixNano()})))
	hs.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := readFrame(hs.br, 1<<20, nil)
		if err != nil {
			t.Fatalf("no PONG: %v", err)
		}
		if f.Type == framePong {
			return
		}
	}
}
