package mesh

import (
	"crypto/ed25519"
	"crypto/x509"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/safetext"
)

// FuzzValidateAddr: an accepted address splits into host and port and
// carries no control characters.
func FuzzValidateAddr(f *testing.F) {
	for _, s := range []string{"x", "127.0.0.1:8000", "[::1]:9", "h:0", "h:65536", "h:-1", ":1", "a\nb:1", "[::1", "h:1:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, a string) {
		if validateAddr(a) != nil {
			return
		}
		if safetext.Text(a) != a {
			t.Fatalf("validateAddr accepted %q with control characters", a)
		}
	})
}

// FuzzCandidates: CANDIDATES and PUNCH payloads never panic the
// decoders, hold at most maxCandidates numeric addresses, and round-trip.
func FuzzCandidates(f *testing.F) {
	f.Add(encodeAddrList([]string{"203.0.113.9:5000", "[2001:db8::1]:7"}))
	f.Add(encodeAddrList(nil))
	f.Add([]byte{5})
	f.Add(encodePunch(punch{Peer: PeerID{1}, Addr: "198.51.100.7:1", UDP: []string{"198.51.100.7:1"}}))
	f.Add(encodePunch(punch{Peer: PeerID{1}, Addr: "198.51.100.7:1"}))
	f.Fuzz(func(t *testing.T, p []byte) {
		if c, err := decodeCandidates(p); err == nil {
			if len(c) > maxCandidates || string(encodeAddrList(c)) != string(p) {
				t.Fatalf("candidates %q do not round-trip", c)
			}
			if len(parseCandidates(c)) != len(c) {
				t.Fatalf("decoded candidates %q that are not numeric", c)
			}
		}
		if pu, err := decodePunch(p); err == nil && string(encodePunch(pu)) != string(p) {
			t.Fatalf("punch %+v does not round-trip", pu)
		}
	})
}

// fuzzMesh is a fixed CA and member used by the fuzz targets below.
type fuzzMesh struct {
	caKey ed25519.PrivateKey
	ca    *x509.Certificate
	pool  *x509.CertPool
	id    PeerID
	cert  []byte
}

func newFuzzMesh(f *testing.F) *fuzzMesh {
	seed := make([]byte, ed25519.SeedSize)
	caKey := ed25519.NewKeyFromSeed(seed)
	ca, err := newCACert(caKey)
	if err != nil {
		f.Fatal(err)
	}
	seed[0] = 1
	member := ed25519.NewKeyFromSeed(seed)
	cert, err := issueCert(ca, caKey, member.Public().(ed25519.PublicKey), "member")
	if err != nil {
		f.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &fuzzMesh{caKey: caKey, ca: ca, pool: pool, id: peerIDOf(cert), cert: cert.Raw}
}

// FuzzRevocationList: decoding and verifying never panics, and a list
// verifies against the CA only if it is exactly a list the CA signed.
func FuzzRevocationList(f *testing.F) {
	m := newFuzzMesh(f)
	signed := &revocationList{Version: 3, IssuedAt: time.Unix(1700000000, 0), Revoked: []PeerID{m.id, {1}}}
	signed.sign(m.caKey)
	good := signed.encode()
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add((&revocationList{Version: 1}).encode())
	bad := append([]byte{}, good...)
	bad[9] ^= 1
	f.Add(bad)
	pub := m.caKey.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, p []byte) {
		l, err := decodeRevocations(p)
		if err != nil {
			return
		}
		if l.verify(pub) == nil && string(l.encode()) != string(good) {
			t.Fatalf("a list the CA never signed verifies: version %d, %d revoked", l.Version, len(l.Revoked))
		}
	})
}

// FuzzPeersEntries: a PEERS payload never panics the decoder or the
// certificate check, and only the one member's ID is ever accepted (each
// fuzz worker issues its own certificate for the same fixed keys, so the
// bytes may differ, the key may not).
func FuzzPeersEntries(f *testing.F) {
	m := newFuzzMesh(f)
	f.Add(encodePeers([]peerEntry{{ID: m.id, Cert: m.cert, Addrs: []string{"127.0.0.1:1"}}}))
	f.Add(encodePeers([]peerEntry{{ID: PeerID{1}, Cert: m.cert}}))
	f.Add(encodePeers([]peerEntry{{ID: m.id, Cert: m.cert[:len(m.cert)-1]}}))
	f.Add(encodePeers([]peerEntry{{ID: m.id}}))
	f.Add([]byte{0xff, 0xff})
	revs := &revocationList{}
	f.Fuzz(func(t *testing.T, p []byte) {
		entries, err := decodePeers(p)
		if err != nil {
			return
		}
		if len(entries) > maxPeersEntries {
			t.Fatalf("%d entries decoded", len(entries))
		}
		for _, pe := range entries {
			if _, err := verifyEntry(pe.ID, pe.Cert, m.pool, revs); err == nil && pe.ID != m.id {
				t.Fatalf("entry %s accepted with a certificate that is not the member's", pe.ID.Short())
			}
		}
	})
}
