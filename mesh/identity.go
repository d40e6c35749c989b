package mesh

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
)

// File names under STATE/mesh.
const (
	fileNodeKey     = "node.key"
	fileNodeCert    = "node.crt"
	fileCACert      = "ca.crt"
	fileCAKey       = "ca.key"
	fileRevocations = "revocations"
	filePeers       = "peers.json"
	fileInvites     = "invites.json"
)

// Certificate lifetimes. Member certificates last 10 years: there is no
// re-issue or automatic renewal, so a short lifetime would lock members out
// with no way back in.
const (
	caValidity     = 20 * 365 * 24 * time.Hour
	memberValidity = 10 * 365 * 24 * time.Hour
	clockSkew      = time.Hour // backdate NotBefore so slightly-off clocks agree
)

// identity is a node's key and, once it is a member, its certificates.
type identity struct {
	key    ed25519.PrivateKey
	id     PeerID
	cert   *x509.Certificate  // member cert; nil until the node is a member
	ca     *x509.Certificate  // mesh CA; nil until the node is a member
	caKey  ed25519.PrivateKey // admin only
	caPool *x509.CertPool
}

// member reports whether the node holds a member certificate.
func (i *identity) member() bool { return i.cert != nil && i.ca != nil }

// admin reports whether the node holds the mesh CA key.
func (i *identity) admin() bool { return i.caKey != nil }

// tlsCert is the chain [member, CA] every member presents, so a joiner can
// pin the CA by fingerprint from the same handshake.
func (i *identity) tlsCert() tls.Certificate {
	return tls.Certificate{
		Certificate: [][]byte{i.cert.Raw, i.ca.Raw},
		PrivateKey:  i.key,
		Leaf:        i.cert,
	}
}

// setMembership installs a member cert and CA cert after checking that the
// member cert is for our key and chains to the CA.
func (i *identity) setMembership(cert, ca *x509.Certificate) error {
	if PeerIDFromKey(cert.RawSubjectPublicKeyInfo) != i.id {
		return errors.New("member certificate is not for this node's key")
	}
	if !ca.IsCA {
		return errors.New("mesh ca certificate is not a ca")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("member certificate does not chain to the mesh ca: %w", err)
	}
	i.cert, i.ca, i.caPool = cert, ca, pool
	return nil
}

// loadIdentity loads STATE/mesh/node.key (creating it on first use) and any
// certificates present.
func loadIdentity(dir string) (*identity, error) {
	key, err := loadOrCreateKey(filepath.Join(dir, fileNodeKey))
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	id := &identity{key: key, id: PeerIDFromKey(spki)}
	cert, err := readCert(filepath.Join(dir, fileNodeCert))
	if err != nil || cert == nil {
		return id, err
	}
	ca, err := readCert(filepath.Join(dir, fileCACert))
	if err != nil {
		return nil, err
	}
	if ca == nil {
		return nil, fmt.Errorf("%s present without %s", fileNodeCert, fileCACert)
	}
	if err := id.setMembership(cert, ca); err != nil {
		return nil, fmt.Errorf("load membership: %w", err)
	}
	if id.caKey, err = readKey(filepath.Join(dir, fileCAKey)); err != nil {
		return nil, err
	}
	if id.caKey != nil && !id.caKey.Public().(ed25519.PublicKey).Equal(ca.PublicKey) {
		return nil, fmt.Errorf("%s does not match %s", fileCAKey, fileCACert)
	}
	return id, nil
}

// createMesh makes a new CA, issues our own member cert and saves both:
// this node becomes the admin of a new mesh.
func (i *identity) createMesh(dir, name string) error {
	_, caKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate ca key: %w", err)
	}
	ca, err := newCACert(caKey)
	if err != nil {
		return err
	}
	cert, err := issueCert(ca, caKey, i.key.Public().(ed25519.PublicKey), name)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, fileCAKey), caKey); err != nil {
		return err
	}
	if err := writeCert(filepath.Join(dir, fileCACert), ca); err != nil {
		return err
	}
	if err := writeCert(filepath.Join(dir, fileNodeCert), cert); err != nil {
		return err
	}
	i.caKey = caKey
	return i.setMembership(cert, ca)
}

// newCACert self-signs the mesh CA certificate.
func newCACert(caKey ed25519.PrivateKey) (*x509.Certificate, error) {
	pub := caKey.Public().(ed25519.PublicKey)
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode ca key: %w", err)
	}
	fp := PeerIDFromKey(spki).Short()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "meshfs CA " + fp},
		NotBefore:             time.Now().Add(-clockSkew),
		NotAfter:              time.Now().Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	return createCert(tmpl, tmpl, pub, caKey)
}

// issueCert signs a member certificate for pub with display name name.
func issueCert(ca *x509.Certificate, caKey ed25519.PrivateKey, pub ed25519.PublicKey, name string) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-clockSkew),
		NotAfter:     time.Now().Add(memberValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	return createCert(tmpl, ca, pub, caKey)
}

// selfSignedCert is the throwaway certificate a joiner presents before it
// is a member: it proves possession of the node key and nothing else.
func selfSignedCert(key ed25519.PrivateKey, name string) (tls.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-clockSkew),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cert, err := createCert(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
}

func createCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// randomSerial returns a random positive 127-bit serial number.
func randomSerial() *big.Int {
	b := make([]byte, 16)
	rand.Read(b)
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b)
}

// caFingerprint is the 16-byte CA pin carried in invite tokens.
func caFingerprint(ca *x509.Certificate) []byte {
	sum := sha256.Sum256(ca.Raw)
	return sum[:16]
}

// meshID is the short, human-readable fingerprint of the mesh CA.
func meshID(ca *x509.Certificate) string {
	sum := sha256.Sum256(ca.Raw)
	return idEncoding.EncodeToString(sum[:])[:8]
}

// peerIDOf returns the ID of a certificate's key.
func peerIDOf(c *x509.Certificate) PeerID { return PeerIDFromKey(c.RawSubjectPublicKeyInfo) }

func loadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, err := readKey(path)
	if err != nil || key != nil {
		return key, err
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	return key, writeKey(path, key)
}

// readKey reads a PKCS#8 Ed25519 key; a missing file gives (nil, nil).
func readKey(path string) (ed25519.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil || der == nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parse %s: not an ed25519 key", path)
	}
	return key, nil
}

// readCert reads a PEM certificate; a missing file gives (nil, nil).
func readCert(path string) (*x509.Certificate, error) {
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil || der == nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return c, nil
}

func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != typ {
		return nil, fmt.Errorf("read %s: no %s PEM block", path, typ)
	}
	return b.Bytes, nil
}

func writeKey(path string, key ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

func writeCert(path string, c *x509.Certificate) error {
	return atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644)
}
