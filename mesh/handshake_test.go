package mesh

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// newOffline returns a node that is not started (no network): New only.
func newOffline(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s) = %v", cfg.Name, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// issueFor makes a member of admin's mesh without the network: a node with
// its own state whose certificate the admin signs directly.
func issueFor(t *testing.T, admin *Node, name string) *Node {
	t.Helper()
	return issueWith(t, admin, testConfig(t, name))
}

// issueWith is issueFor with a config of the caller's.
func issueWith(t *testing.T, admin *Node, cfg Config) *Node {
	t.Helper()
	name := cfg.Name
	ident, err := loadIdentity(mustMeshDir(t, cfg.StateDir))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := issueCert(admin.ident.ca, admin.ident.caKey, ident.key.Public().(ed25519.PublicKey), name)
	if err != nil {
		t.Fatal(err)
	}
	if err := ident.setMembership(cert, admin.ident.ca); err != nil {
		t.Fatal(err)
	}
	dir := mustMeshDir(t, cfg.StateDir)
	if err := writeCert(dir+"/"+fileCACert, admin.ident.ca); err != nil {
		t.Fatal(err)
	}
	if err := writeCert(dir+"/"+fileNodeCert, cert); err != nil {
		t.Fatal(err)
	}
	return newOffline(t, cfg)
}

func mustMeshDir(t *testing.T, state string) string {
	dir := state + "/mesh"
	if err := mkdir(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pipeHandshake runs server.handshake and client.handshake over net.Pipe
// and returns both errors.
func pipeHandshake(t *testing.T, server *Node, client func(net.Conn) error) (srvErr, cliErr error) {
	t.Helper()
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	done := make(chan error, 1)
	go func() {
		_, err := server.handshake(context.Background(), c1, false, PeerID{})
		c1.Close()
		done <- err
	}()
	cliErr = client(c2)
	c2.Close()
	return <-done, cliErr
}

// memberClient dials as node n (a full member handshake, with HELLO).
func memberClient(n *Node, expect PeerID) func(net.Conn) error {
	return func(c net.Conn) error {
		_, err := n.handshake(context.Background(), c, true, expect)
		return err
	}
}

// rawTLSClient speaks TLS with cfg, then reads one frame: a refused client
// sees the server's alert on its first read (TLS 1.3).
func rawTLSClient(cfg *tls.Config) func(net.Conn) error {
	return func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(3 * time.Second))
		tc := tls.Client(c, cfg)
		if err := tc.Handshake(); err != nil {
			return err
		}
		_, err := readFrame(tc, 0, nil)
		return err
	}
}

func selfSignedTLS(t *testing.T, mutate func(*tls.Config)) *tls.Config {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	cert, err := selfSignedCert(key, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseTLS(cert)
	cfg.InsecureSkipVerify = true
	if mutate != nil {
		mutate(cfg)
	}
	return cfg
}

func TestHandshake(t *testing.T) {
	admin := newOffline(t, testConfig(t, "alice"))
	bob := issueFor(t, admin, "bob")
	carol := issueFor(t, admin, "carol")
	other := newOffline(t, testConfig(t, "eve")) // admin of another mesh
	revoked := issueFor(t, admin, "rex")
	l := &revocationList{Version: 1, IssuedAt: time.Now(), Revoked: []PeerID{revoked.ID()}}
	l.sign(admin.ident.caKey)
	if _, err := admin.applyRevocations(l.encode()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		client  func(net.Conn) error
		wantSrv error // nil: accepted; errAny: any error
		wantCli error // checked when set
	}{
		{"member ok", memberClient(bob, admin.ID()), nil, nil},
		{"member learns newer revocations", memberClient(carol, PeerID{}), nil, nil},
		{"self-signed refused without invites", rawTLSClient(selfSignedTLS(t, nil)), errAny, nil},
		{"revoked member refused", memberClient(revoked, PeerID{}), errRevoked, nil},
		{"other mesh refused", memberClient(other, PeerID{}), errAny, nil},
		{"tls 1.2 refused", rawTLSClient(selfSignedTLS(t, func(c *tls.Config) {
			c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		})), errAny, nil},
		{"no alpn refused", rawTLSClient(func() *tls.Config {
			c := bob.clientTLS(PeerID{})
			c.NextProtos = nil
			c.VerifyConnection = nil
			return c
		}()), errAny, nil},
		{"self connection refused", memberClient(admin, PeerID{}), errAny, errSelf},
		{"wrong expected id refused by client", memberClient(bob, carol.ID()), errAny, errWrongID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srvErr, cliErr := pipeHandshake(t, admin, tc.client)
			switch {
			case tc.wantSrv == nil && (srvErr != nil || cliErr != nil):
				t.Fatalf("handshake: server %v, client %v; want both nil", srvErr, cliErr)
			case tc.wantSrv == errAny && (srvErr == nil || cliErr == nil):
				t.Fatalf("handshake: server %v, client %v; want both to fail", srvErr, cliErr)
			case tc.wantSrv != nil && tc.wantSrv != errAny && !errors.Is(srvErr, tc.wantSrv):
				t.Fatalf("handshake: server %v, want %v", srvErr, tc.wantSrv)
			case tc.wantCli != nil && !errors.Is(cliErr, tc.wantCli):
				t.Fatalf("handshake: client %v, want %v", cliErr, tc.wantCli)
			}
		})
	}
	if !carol.isRevoked(revoked.ID()) {
		t.Errorf("carol did not adopt the newer revocation list during HELLO")
	}
}

var errAny = errors.New("any error")

// TestHandshakeJoinerOnlyWithInvite: a self-signed client is a pre-member
// only while an invite is open.
func TestHandshakeJoinerOnlyWithInvite(t *testing.T) {
	admin := newOffline(t, testConfig(t, "alice"))
	if _, err := admin.Invite(time.Minute, 1); err != nil {
		t.Fatal(err)
	}
	cfg := selfSignedTLS(t, nil)
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	go func() {
		tc := tls.Client(c2, cfg)
		tc.Handshake()
	}()
	hs, err := admin.handshake(context.Background(), c1, false, PeerID{})
	if err != nil || hs.role != roleJoiner {
		t.Fatalf("handshake with open invite = %v, role %v; want joiner", err, hs)
	}
}

func TestRevocationRollbackAndForgery(t *testing.T) {
	admin := newOffline(t, testConfig(t, "alice"))
	bob := issueFor(t, admin, "bob")
	v2 := &revocationList{Version: 2, IssuedAt: time.Now(), Revoked: []PeerID{{1}}}
	v2.sign(admin.ident.caKey)
	v1 := &revocationList{Version: 1, IssuedAt: time.Now(), Revoked: nil}
	v1.sign(admin.ident.caKey)
	if ok, err := bob.applyRevocations(v2.encode()); !ok || err != nil {
		t.Fatalf("apply v2 = %v, %v; want true, nil", ok, err)
	}
	if ok, err := bob.applyRevocations(v1.encode()); ok || err != nil {
		t.Fatalf("apply v1 after v2 = %v, %v; want ignored", ok, err)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged := &revocationList{Version: 9, IssuedAt: time.Now(), Revoked: []PeerID{admin.ID()}}
	forged.sign(otherKey)
	if ok, err := bob.applyRevocations(forged.encode()); ok || !errors.Is(err, ErrProtocol) {
		t.Fatalf("apply forged = %v, %v; want ErrProtocol", ok, err)
	}
	if bob.revs.Version != 2 {
		t.Fatalf("version = %d, want 2", bob.revs.Version)
	}
}

// TestHelloVersionMismatch: a peer of another mesh protocol is refused with
// an error that names both versions and is logged where a user sees it.
func TestHelloVersionMismatch(t *testing.T) {
	var b bytes.Buffer
	b.Write(encodeFrame(frameHello, encodeHello(hello{Version: protoVersion - 1, Name: "old"})))
	_, err := readHello(bufio.NewReader(&b))
	if !errors.Is(err, ErrVersion) || !errors.Is(err, ErrProtocol) {
		t.Fatalf("readHello = %v, want ErrVersion and ErrProtocol", err)
	}
	want := fmt.Sprintf("mesh protocol %d, this node %d", protoVersion-1, protoVersion)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name both versions (%q)", err, want)
	}
	if logLevelFor(err) != slog.LevelWarn {
		t.Errorf("a version mismatch is logged at %v, want warn", logLevelFor(err))
	}
}
