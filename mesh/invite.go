package mesh

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/meshfs/meshfs/internal/atomicfile"
)

// Invite is a token that admits new members, as made by Node.Invite.
type Invite struct {
	Token   string    // "msh1-…": give it to the new member; never logged
	Expires time.Time // after this the token is refused
	Uses    int       // how many members it admits
}

// Token layout: "msh1-" + lower base32 (no padding) of
// version(1) | SHA-256(CA cert)[:16] | tokenID(4) | secret(16).
const (
	tokenPrefix  = "msh1-"
	tokenVersion = 1
	tokenLen     = 1 + 16 + 4 + 16
	joinLabel    = "meshfs-join-v1"
	inviteKeep   = 7 * 24 * time.Hour // expired records kept to answer "expired"
	failWindow   = time.Minute
)

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// token is a parsed invite token.
type token struct {
	caFP   [16]byte
	id     [4]byte
	secret [16]byte
}

func (t *token) String() string {
	b := append([]byte{tokenVersion}, t.caFP[:]...)
	b = append(append(b, t.id[:]...), t.secret[:]...)
	return tokenPrefix + tokenEncoding.EncodeToString(b)
}

// parseToken never echoes the token in its errors: it is a secret.
func parseToken(s string) (*token, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, tokenPrefix) {
		return nil, fmt.Errorf("invite token does not start with %q: %w", tokenPrefix, ErrBadInvite)
	}
	b, err := tokenEncoding.DecodeString(strings.ToLower(s[len(tokenPrefix):]))
	if err != nil || len(b) != tokenLen || b[0] != tokenVersion {
		return nil, fmt.Errorf("invite token is not a version %d token: %w", tokenVersion, ErrBadInvite)
	}
	t := &token{}
	copy(t.caFP[:], b[1:17])
	copy(t.id[:], b[17:21])
	copy(t.secret[:], b[21:])
	return t, nil
}

// joinKey is the HMAC key of the JOIN proof: SHA-256(secret). Keying the
// HMAC with the hash (not the secret itself) is what lets the admin store
// only SHA-256(secret) and still verify proofs; invites.json is 0600 next
// to ca.key, which is worth more to an attacker than any pending invite.
func joinKey(secret []byte) []byte {
	sum := sha256.Sum256(secret)
	return sum[:]
}

// joinProof binds the token to this TLS session and the joiner's
// certificate, so a proof cannot be replayed on another connection.
func joinProof(key, exporter, joinerCertDER []byte) []byte {
	certSum := sha256.Sum256(joinerCertDER)
	mac := hmac.New(sha256.New, key)
	mac.Write(exporter)
	mac.Write(certSum[:])
	return mac.Sum(nil)
}

// inviteRecord is what the admin keeps per token (invites.json).
type inviteRecord struct {
	ID      string    `json:"id"`   // hex token ID
	KeyHash string    `json:"hash"` // hex SHA-256(secret)
	Expires time.Time `json:"expires"`
	Uses    int       `json:"uses_left"`
	// Joined lists the members (hex IDs) the invite admitted. A joiner
	// whose JOIN_OK was lost asks again with the same key; it is admitted
	// again without spending another use.
	Joined []string `json:"joined,omitempty"`
}

// inviteStore holds the admin's outstanding invites and the per-IP count of
// failed attempts. A nil store (not the admin) has no open invites.
type inviteStore struct {
	path  string
	limit int // failed attempts per IP per failWindow
	mu    sync.Mutex
	list  []*inviteRecord
	fails map[string][]time.Time
}

func loadInvites(path string, limit int) (*inviteStore, error) {
	s := &inviteStore{path: path, limit: limit, fails: map[string][]time.Time{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &s.list)
	}
	if err != nil {
		return nil, fmt.Errorf("load invites: %w", err)
	}
	return s, nil
}

// open reports whether some invite can still be redeemed by joiner: one
// with uses left, or one that admitted joiner already (its answer may
// have been lost). Only then does the TLS handshake accept a certificate
// that is not a member's.
func (s *inviteStore) open(joiner PeerID, now time.Time) bool {
	if s == nil {
		return false
	}
	who := hex.EncodeToString(joiner[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.list, func(r *inviteRecord) bool {
		return now.Before(r.Expires) && (r.Uses > 0 || slices.Contains(r.Joined, who))
	})
}

// add creates and stores a new invite, returning its token ID and secret.
func (s *inviteStore) add(ttl time.Duration, uses int, now time.Time) (id [4]byte, secret [16]byte, err error) {
	rand.Read(id[:])
	rand.Read(secret[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = slices.DeleteFunc(s.list, func(r *inviteRecord) bool { return now.After(r.Expires.Add(inviteKeep)) })
	s.list = append(s.list, &inviteRecord{ID: hex.EncodeToString(id[:]),
		KeyHash: hex.EncodeToString(joinKey(secret[:])), Expires: now.Add(ttl), Uses: uses})
	return id, secret, s.saveLocked()
}

// redeem checks a JOIN and, when it is good, uses up one use of the invite.
// It returns 0 on success or the reason to send back.
func (s *inviteStore) redeem(ip string, id []byte, proof, exporter, certDER []byte, joiner PeerID, now time.Time) reasonCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	recent := slices.DeleteFunc(s.fails[ip], func(t time.Time) bool { return now.Sub(t) > failWindow })
	s.fails[ip] = recent
	if len(recent) >= s.limit {
		return reasonTooManyAttempts
	}
	r := s.find(id)
	if r == nil || !s.proofOK(r, proof, exporter, certDER) {
		s.fails[ip] = append(recent, now)
		return reasonInviteUnknown
	}
	who := hex.EncodeToString(joiner[:])
	switch {
	case !now.Before(r.Expires):
		return reasonInviteExpired
	case slices.Contains(r.Joined, who):
		return 0
	case r.Uses <= 0:
		return reasonInviteUsed
	}
	r.Uses--
	r.Joined = append(r.Joined, who)
	if err := s.saveLocked(); err != nil {
		r.Uses++
		r.Joined = r.Joined[:len(r.Joined)-1]
		return reasonJoinFailed
	}
	return 0
}

func (s *inviteStore) find(id []byte) *inviteRecord {
	want := hex.EncodeToString(id)
	for _, r := range s.list {
		if r.ID == want {
			return r
		}
	}
	return nil
}

// proofOK compares in constant time.
func (s *inviteStore) proofOK(r *inviteRecord, proof, exporter, certDER []byte) bool {
	key, err := hex.DecodeString(r.KeyHash)
	return err == nil && hmac.Equal(proof, joinProof(key, exporter, certDER))
}

func (s *inviteStore) saveLocked() error {
	data, err := json.MarshalIndent(s.list, "", "  ")
	if err != nil {
		return fmt.Errorf("save invites: %w", err)
	}
	return atomicfile.Write(s.path, data, 0o600)
}

// Invite makes a token that admits up to uses new members within ttl
// (defaults: 24 h, 1 use). Only the admin can invite.
func (n *Node) Invite(ttl time.Duration, uses int) (Invite, error) {
	n.mu.Lock()
	admin, ca := n.ident.admin(), n.ident.ca
	n.mu.Unlock()
	if !admin || n.invites == nil {
		return Invite{}, fmt.Errorf("invite: %w", ErrNotAdmin)
	}
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	uses = max(uses, 1)
	now := time.Now()
	id, secret, err := n.invites.add(ttl, uses, now)
	if err != nil {
		return Invite{}, fmt.Errorf("invite: %w", err)
	}
	t := &token{id: id, secret: secret}
	copy(t.caFP[:], caFingerprint(ca))
	n.log.Info("invite created", "expires", now.Add(ttl), "uses", uses)
	return Invite{Token: t.String(), Expires: now.Add(ttl), Uses: uses}, nil
}
