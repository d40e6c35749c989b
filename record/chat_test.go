package record

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

func TestChatRoundTrip(t *testing.T) {
	alice := newAuthor(t, 1)
	tests := []struct {
		name string
		text string
	}{
		{"line", "hello"},
		{"skip", ""},
		{"unicode", "héllo wörld ✓ 日本"},
		{"longest", strings.Repeat("x", MaxText)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := alice.signed(3, tc.text)
			got, err := DecodeChat(EncodeChat(c))
			if err != nil {
				t.Fatalf("DecodeChat(EncodeChat(%q)) = %v", tc.text, err)
			}
			if !got.Equal(c) {
				t.Fatalf("DecodeChat(EncodeChat(c)) = %+v, want %+v", got, c)
			}
			if err := got.Verify(alice.pub()); err != nil {
				t.Fatalf("Verify after round trip = %v", err)
			}
		})
	}
}

// TestWireLayout pins the signed bytes and the wire form, built here by
// hand rather than with internal/wire, so a change to either shows.
func TestWireLayout(t *testing.T) {
	alice := newAuthor(t, 1)
	c := Chat{Author: alice.id, Seq: 0x0102, Lamport: 0x0304, Time: testTime, Text: "hi"}
	c.Sign(alice.key)
	be := binary.BigEndian
	var want []byte
	want = append(want, "meshfs chat record v1\x00"...)
	want = append(want, alice.id[:]...)
	want = be.AppendUint64(want, 0x0102)
	want = be.AppendUint64(want, 0x0304)
	want = be.AppendUint64(want, uint64(testTime.UnixNano()))
	want = be.AppendUint32(want, 2)
	want = append(want, "hi"...)
	if got := c.signedBytes(); !bytes.Equal(got, want) {
		t.Errorf("signedBytes() = %x, want %x", got, want)
	}
	if !ed25519.Verify(alice.pub(), want, c.Sig) {
		t.Errorf("Sig does not verify over the hand-built signed bytes")
	}
	wire := []byte{1}
	wire = append(wire, alice.id[:]...)
	wire = be.AppendUint64(wire, 0x0102)
	wire = be.AppendUint64(wire, 0x0304)
	wire = be.AppendUint64(wire, uint64(testTime.UnixNano()))
	wire = be.AppendUint16(wire, 2)
	wire = append(wire, "hi"...)
	wire = append(wire, c.Sig...)
	if got := EncodeChat(c); !bytes.Equal(got, wire) {
		t.Errorf("EncodeChat() = %x, want %x", got, wire)
	}
}

// TestSignatures: every way to forge, alter, renumber or replay a record
// fails. The altered records are checked through VerifyWith with every
// member's key known, so the signature itself must catch them.
func TestSignatures(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	keys := newKeyring(alice, bob)
	orig := alice.signed(5, "pay bob 5")
	tests := []struct {
		name   string
		change func(c *Chat)
	}{
		{"author", func(c *Chat) { c.Author = bob.id }},
		{"seq: reorder or replay under another number", func(c *Chat) { c.Seq++ }},
		{"lamport", func(c *Chat) { c.Lamport++ }},
		{"time", func(c *Chat) { c.Time = c.Time.Add(time.Nanosecond) }},
		{"text", func(c *Chat) { c.Text = "pay bob 500" }},
		{"text emptied into a skip", func(c *Chat) { c.Text = "" }},
		{"signature bit", func(c *Chat) { c.Sig[10] ^= 1 }},
		{"replay: signature of another record", func(c *Chat) { c.Sig = alice.signed(6, "pay bob 5").Sig }},
		{"signed by another member", func(c *Chat) { c.Sign(bob.key) }},
	}
	if err := orig.VerifyWith(keys); err != nil {
		t.Fatalf("VerifyWith(original) = %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := orig
			c.Sig = bytes.Clone(orig.Sig)
			tc.change(&c)
			if err := c.VerifyWith(keys); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("VerifyWith(altered) = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	t.Run("right key", func(t *testing.T) {
		if err := alice.signed(1, "hi").Verify(alice.pub()); err != nil {
			t.Fatalf("Verify = %v", err)
		}
	})
	t.Run("skip record", func(t *testing.T) {
		if err := alice.signed(2, "").Verify(alice.pub()); err != nil {
			t.Fatalf("Verify(skip) = %v", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		if err := alice.signed(1, "hi").Verify(bob.pub()); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify(bob's key) = %v, want ErrBadSignature", err)
		}
	})
	t.Run("signed and checked with a key that is not the author's", func(t *testing.T) {
		c := alice.signed(1, "hi")
		c.Sign(bob.key) // bob's signature is good, but the record claims alice
		if err := c.Verify(bob.pub()); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify(bob's record as alice's) = %v, want ErrBadSignature", err)
		}
	})
	t.Run("short public key", func(t *testing.T) {
		if err := alice.signed(1, "hi").Verify(alice.pub()[:31]); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify(31-byte key) = %v, want ErrBadSignature", err)
		}
	})
	t.Run("malformed record", func(t *testing.T) {
		c := alice.signed(1, "hi")
		c.Lamport = 0
		c.Sign(alice.key)
		if err := c.Verify(alice.pub()); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Verify(lamport 0) = %v, want ErrMalformed", err)
		}
	})
	t.Run("sign with a short key", func(t *testing.T) {
		c := alice.signed(1, "hi")
		c.Sign(alice.key[:10])
		if c.Sig != nil {
			t.Fatalf("Sign(10-byte key) set Sig %x, want nil", c.Sig)
		}
	})
}

func TestVerifyWithKeysError(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	tests := []struct {
		name string
		keys *keyring
		want error
	}{
		{"revoked author", func() *keyring { k := newKeyring(alice, bob); k.revoked[alice.id] = true; return k }(), errRevoked},
		{"unknown author", newKeyring(bob), mesh.ErrUnknownPeer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := alice.signed(1, "hi").VerifyWith(tc.keys)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyWith = %v, want %v wrapped", err, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	alice := newAuthor(t, 1)
	tests := []struct {
		name   string
		change func(c *Chat)
	}{
		{"zero author", func(c *Chat) { c.Author = mesh.PeerID{} }},
		{"seq 0", func(c *Chat) { c.Seq = 0 }},
		{"lamport 0", func(c *Chat) { c.Lamport = 0 }},
		{"zero time", func(c *Chat) { c.Time = time.Time{} }},
		{"time 0 nanos", func(c *Chat) { c.Time = time.Unix(0, 0) }},
		{"time past int64 nanos", func(c *Chat) { c.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"text over MaxText", func(c *Chat) { c.Text = strings.Repeat("x", MaxText+1) }},
		{"text not utf-8", func(c *Chat) { c.Text = "ab\xffcd" }},
		{"escape sequence", func(c *Chat) { c.Text = "\x1b[2Jgone" }},
		{"control character", func(c *Chat) { c.Text = "a\rb" }},
		{"tab", func(c *Chat) { c.Text = "a\tb" }},
		{"bidi override", func(c *Chat) { c.Text = "evil\u202etxt.exe" }},
		{"signature 63 bytes", func(c *Chat) { c.Sig = c.Sig[:63] }},
		{"no signature", func(c *Chat) { c.Sig = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := alice.signed(1, "fine")
			tc.change(&c)
			if c.Sig != nil && len(c.Sig) == ed25519.SignatureSize {
				c.Sign(alice.key) // a real author signed it: only Check stands in the way
			}
			if err := c.Check(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Check() = %v, want ErrMalformed", err)
			}
			if _, err := DecodeChat(EncodeChat(c)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeChat(EncodeChat(c)) = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDecodeChatRefuses(t *testing.T) {
	b := EncodeChat(newAuthor(t, 1).signed(7, "hello"))
	for i := range len(b) {
		if _, err := DecodeChat(b[:i]); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeChat(first %d of %d bytes) = %v, want ErrMalformed", i, len(b), err)
		}
	}
	if _, err := DecodeChat(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformed) {
		t.Errorf("DecodeChat(trailing byte) = %v, want ErrMalformed", err)
	}
	v3 := bytes.Clone(b)
	v3[0] = 3
	_, err := DecodeChat(v3)
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "record format 3, this build reads 1 and 2") {
		t.Errorf("DecodeChat(version 3) = %v, want one naming format 3", err)
	}
}

func TestEqual(t *testing.T) {
	alice := newAuthor(t, 1)
	c := alice.signed(1, "hi")
	same := c
	same.Time = c.Time.In(time.FixedZone("x", 3600))
	same.Sig = bytes.Clone(c.Sig)
	if !c.Equal(same) {
		t.Errorf("Equal(same record in another zone) = false")
	}
	tests := []struct {
		name   string
		change func(o *Chat)
	}{
		{"author", func(o *Chat) { o.Author = newAuthor(t, 2).id }},
		{"seq", func(o *Chat) { o.Seq++ }},
		{"lamport", func(o *Chat) { o.Lamport++ }},
		{"time", func(o *Chat) { o.Time = o.Time.Add(1) }},
		{"text", func(o *Chat) { o.Text += "!" }},
		{"sig", func(o *Chat) { o.Sig[0] ^= 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := c
			o.Sig = bytes.Clone(c.Sig)
			tc.change(&o)
			if c.Equal(o) {
				t.Fatalf("Equal(record with another %s) = true", tc.name)
			}
		})
	}
}
