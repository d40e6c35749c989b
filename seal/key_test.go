package seal

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/edwards25519"
)

// TestConversion checks the derived keys against each other on random
// members: X25519(scalar(priv), base point), computed by crypto/ecdh, is
// montgomery(pub), and age's identity has the recipient Recipient gives.
func TestConversion(t *testing.T) {
	for range 64 {
		pub, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		u, err := montgomery(pub)
		if err != nil {
			t.Fatalf("montgomery(%x) = %v", pub, err)
		}
		k, err := ecdh.X25519().NewPrivateKey(scalar(priv))
		if err != nil {
			t.Fatal(err)
		}
		if got := k.PublicKey().Bytes(); string(got) != string(u) {
			t.Fatalf("X25519(scalar(priv), base) = %x, want montgomery(pub) = %x", got, u)
		}
		r, err := Recipient(pub)
		if err != nil {
			t.Fatalf("Recipient(%x) = %v", pub, err)
		}
		id, err := Identity(priv)
		if err != nil {
			t.Fatalf("Identity = %v", err)
		}
		if got, want := id.(*age.X25519Identity).Recipient().String(), r.(*age.X25519Recipient).String(); got != want {
			t.Fatalf("Identity(priv).Recipient() = %s, want Recipient(pub) = %s", got, want)
		}
	}
}

// TestLibsodium pins both halves of the conversion for member(1) to the
// values libsodium 1.0.18 gives (crypto_sign_seed_keypair, then
// crypto_sign_ed25519_sk_to_curve25519 and _pk_to_curve25519).
func TestLibsodium(t *testing.T) {
	const (
		wantScalar = "58e86efb75fa4e2c410f46e16de9f6acae1a1703528651b69bc176c088bef36e"
		wantU      = "1b1b58dd50ea14b60da17b790cd02754d970c9bab864ebb3c0f3016fe51d3f57"
	)
	if got := hex.EncodeToString(scalar(member(1))); got != wantScalar {
		t.Errorf("scalar(member(1)) = %s, want %s", got, wantScalar)
	}
	u, err := montgomery(pubOf(member(1)))
	if got := hex.EncodeToString(u); err != nil || got != wantU {
		t.Errorf("montgomery(member(1)) = %s, %v, want %s", got, err, wantU)
	}
}

// smallOrder holds encodings of points of order 1, 2, 4 and 8.
var smallOrder = []string{
	"0100000000000000000000000000000000000000000000000000000000000000", // identity
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
	"0000000000000000000000000000000000000000000000000000000000000000", // order 4
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", // order 8
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", // order 8
}

// notAPoint returns an encoding that does not decode to a curve point.
func notAPoint(t *testing.T) []byte {
	t.Helper()
	for y := byte(2); y < 255; y++ {
		b := make([]byte, 32)
		b[0] = y
		if _, err := new(edwards25519.Point).SetBytes(b); err != nil {
			return b
		}
	}
	t.Fatal("no invalid encoding found")
	return nil
}

// mixedOrder returns a valid key plus a point of order 8.
func mixedOrder(t *testing.T) []byte {
	t.Helper()
	p, err := new(edwards25519.Point).SetBytes(pubOf(member(1)))
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := hex.DecodeString(smallOrder[3])
	tp, err := new(edwards25519.Point).SetBytes(tb)
	if err != nil {
		t.Fatal(err)
	}
	return p.Add(p, tp).Bytes()
}

func TestRecipientRefuses(t *testing.T) {
	cases := []struct {
		name string
		pub  []byte
	}{
		{"empty", nil},
		{"short", pubOf(member(1))[:31]},
		{"long", append(pubOf(member(1)), 0)},
		{"not a point", notAPoint(t)},
		{"mixed order", mixedOrder(t)},
	}
	for i, s := range smallOrder {
		b, _ := hex.DecodeString(s)
		p, err := new(edwards25519.Point).SetBytes(b)
		if err != nil || p.MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) != 1 {
			t.Fatalf("smallOrder[%d] is not of small order", i)
		}
		cases = append(cases, struct {
			name string
			pub  []byte
		}{"small order " + s[:8], b})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Recipient(tc.pub); !errors.Is(err, ErrBadKey) {
				t.Errorf("Recipient(%x) = %v, want ErrBadKey", tc.pub, err)
			}
			if _, err := SealBytes([]byte("x"), pubOf(member(1)), tc.pub); !errors.Is(err, ErrBadKey) {
				t.Errorf("SealBytes to %x = %v, want ErrBadKey", tc.pub, err)
			}
		})
	}
}

func TestIdentityRefusesShortKey(t *testing.T) {
	if _, err := Identity(member(1)[:32]); !errors.Is(err, ErrBadKey) {
		t.Errorf("Identity(32 bytes) = %v, want ErrBadKey", err)
	}
}

// TestBech32 checks the copied encoder against a BIP 173 vector and
// against age's own encoder (the String methods), for both kinds of key.
func TestBech32(t *testing.T) {
	for _, tc := range []struct{ hrp, want string }{{"a", "a12uel5l"}, {"A", "A12UEL5L"}} {
		if got := encodeBech32(tc.hrp, nil); got != tc.want {
			t.Errorf("encodeBech32(%q, nil) = %q, want %q", tc.hrp, got, tc.want)
		}
	}
	for range 64 {
		b := randomBytes(t, 32)
		s := encodeBech32("age", b)
		r, err := age.ParseX25519Recipient(s)
		if err != nil || r.String() != s {
			t.Fatalf("age.ParseX25519Recipient(%s) = %v, %v", s, r, err)
		}
		s = encodeBech32("AGE-SECRET-KEY-", b)
		id, err := age.ParseX25519Identity(s)
		if err != nil || id.String() != s {
			t.Fatalf("age.ParseX25519Identity(%s) = %v", s, err)
		}
		if !strings.HasPrefix(s, "AGE-SECRET-KEY-1") {
			t.Fatalf("identity encoding %s lacks its prefix", s)
		}
	}
}
