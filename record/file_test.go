package record

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

// file returns a regular file record of a with two replaced transfers,
// signed by a.
func (a author) file() File {
	f := File{
		Author: a.id, ID: [16]byte{1, 2, 3}, Path: "docs/plan.txt", Type: 0,
		Size: 1 << 20, BlockSize: 128 << 10, Mode: 0o644, MTime: testTime.UnixNano(),
		Replaces: [][16]byte{{9}, {8}}, FileHash: [32]byte{0xaa, 0xbb},
	}
	f.Sign(a.key)
	return f
}

// link returns a symbolic link record of a, signed by a.
func (a author) link() File {
	f := File{Author: a.id, ID: [16]byte{4}, Path: "docs/latest", Type: 2, Target: "plan.txt",
		Mode: 0o777, MTime: testTime.UnixNano()}
	f.Sign(a.key)
	return f
}

// privateFile returns a's private file for the member to: a sealed box.
func (a author) privateFile(to mesh.PeerID) File {
	f := File{Author: a.id, ID: [16]byte{7}, Path: "0707.sealed", Size: 5 << 20, BlockSize: 1 << 20,
		Mode: 0o600, MTime: testTime.UnixNano(), FileHash: [32]byte{0xcc}, To: to}
	f.Sign(a.key)
	return f
}

// clone returns f with its own Sig and Replaces.
func (f File) clone() File {
	f.Sig = bytes.Clone(f.Sig)
	f.Replaces = slices.Clone(f.Replaces)
	return f
}

func TestFileVerify(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	for _, f := range []File{alice.file(), alice.link()} {
		if err := f.Verify(alice.pub()); err != nil {
			t.Errorf("Verify(%s) = %v", f.Path, err)
		}
		if err := f.VerifyWith(newKeyring(alice, bob)); err != nil {
			t.Errorf("VerifyWith(%s) = %v", f.Path, err)
		}
	}
	t.Run("wrong key", func(t *testing.T) {
		if err := alice.file().Verify(bob.pub()); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify(bob's key) = %v, want ErrBadSignature", err)
		}
	})
	t.Run("signed and checked with a key that is not the author's", func(t *testing.T) {
		f := alice.file()
		f.Sign(bob.key)
		if err := f.Verify(bob.pub()); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify(bob's record as alice's) = %v, want ErrBadSignature", err)
		}
	})
	t.Run("short public key", func(t *testing.T) {
		if err := alice.file().Verify(alice.pub()[:31]); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify(31-byte key) = %v, want ErrBadSignature", err)
		}
	})
	t.Run("malformed record", func(t *testing.T) {
		f := alice.file()
		f.Mode = 0o4755
		f.Sign(alice.key)
		if err := f.Verify(alice.pub()); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Verify(setuid mode) = %v, want ErrMalformed", err)
		}
	})
	t.Run("sign with a short key", func(t *testing.T) {
		f := alice.file()
		f.Sign(alice.key[:10])
		if f.Sig != nil {
			t.Fatalf("Sign(10-byte key) set Sig %x, want nil", f.Sig)
		}
	})
	t.Run("SignWith", func(t *testing.T) {
		f := alice.file()
		f.Sig = nil
		if err := f.SignWith(alice.key); err != nil {
			t.Fatalf("SignWith = %v", err)
		}
		if err := f.Verify(alice.pub()); err != nil {
			t.Fatalf("Verify after SignWith = %v", err)
		}
	})
}

// TestFileLayout pins the signed bytes, built here by hand rather than with
// internal/wire, so a change shows.
func TestFileLayout(t *testing.T) {
	alice := newAuthor(t, 1)
	f := File{Author: alice.id, ID: [16]byte{1, 2}, Type: 0, Path: "a/b", Size: 0x0102, BlockSize: 0x0304,
		Mode: 0o640, MTime: -5, Replaces: [][16]byte{{7}}, FileHash: [32]byte{0xfe}}
	f.Sign(alice.key)
	be := binary.BigEndian
	var want []byte
	want = append(want, "meshfs file record v1\x00"...)
	want = append(want, alice.id[:]...)
	want = append(want, f.ID[:]...)
	want = append(want, 0)
	want = be.AppendUint16(want, 3)
	want = append(want, "a/b"...)
	want = be.AppendUint16(want, 0)
	want = be.AppendUint64(want, 0x0102)
	want = be.AppendUint32(want, 0x0304)
	want = be.AppendUint32(want, 0o640)
	want = be.AppendUint64(want, 0xffff_ffff_ffff_fffb)
	want = append(want, 1, 7)
	want = append(want, make([]byte, 15)...)
	want = append(want, 0xfe)
	want = append(want, make([]byte, 31)...)
	if got := f.signedBytes(); !bytes.Equal(got, want) {
		t.Errorf("signedBytes() = %x, want %x", got, want)
	}
	if !ed25519.Verify(alice.pub(), want, f.Sig) {
		t.Errorf("Sig does not verify over the hand-built signed bytes")
	}
	l := alice.link()
	if got := l.signedBytes(); !bytes.Contains(got, []byte("\x00\x08plan.txt")) {
		t.Errorf("link signedBytes() = %x, want the target with a u16 length", got)
	}
}

// TestFileSignatures: every signed field altered after signing, and every
// borrowed signature, fails. They are checked through VerifyWith with every
// member's key known, so the signature itself must catch them.
func TestFileSignatures(t *testing.T) {
	alice, bob := newAuthor(t, 1), newAuthor(t, 2)
	keys := newKeyring(alice, bob)
	plain := alice.file()
	plain.Replaces = nil
	plain.Sign(alice.key)
	tests := []struct {
		name   string
		orig   File
		change func(f *File)
	}{
		{"author", alice.file(), func(f *File) { f.Author = bob.id }},
		{"id", alice.file(), func(f *File) { f.ID[15] ^= 1 }},
		{"path", alice.file(), func(f *File) { f.Path = "docs/plan.txu" }},
		{"type", plain, func(f *File) { f.Type = 1 }},
		{"target", alice.link(), func(f *File) { f.Target = "/etc/passwd" }},
		{"size", alice.file(), func(f *File) { f.Size++ }},
		{"block size", alice.file(), func(f *File) { f.BlockSize *= 2 }},
		{"mode", alice.file(), func(f *File) { f.Mode = 0o666 }},
		{"mtime", alice.file(), func(f *File) { f.MTime++ }},
		{"replaces: one changed", alice.file(), func(f *File) { f.Replaces[1][0] ^= 1 }},
		{"replaces: one added", alice.file(), func(f *File) { f.Replaces = append(f.Replaces, [16]byte{5}) }},
		{"replaces: one dropped", alice.file(), func(f *File) { f.Replaces = f.Replaces[:1] }},
		{"replaces: reordered", alice.file(), func(f *File) { slices.Reverse(f.Replaces) }},
		{"replaces: added to none", plain, func(f *File) { f.Replaces = [][16]byte{{1}} }},
		{"file hash", alice.file(), func(f *File) { f.FileHash[31] ^= 1 }},
		{"signature bit", alice.file(), func(f *File) { f.Sig[10] ^= 1 }},
		{"replay: signature of another file record", alice.file(), func(f *File) { f.Sig = alice.link().Sig }},
		{"replay: signature of the same path, another version", alice.file(), func(f *File) {
			o := alice.file()
			o.ID[0]++
			o.Sign(alice.key)
			f.Sig = o.Sig
		}},
		{"signed by another member", alice.file(), func(f *File) { f.Sign(bob.key) }},
		{"made private", plain, func(f *File) { f.To = bob.id }},
		{"private: recipient changed", alice.privateFile(bob.id), func(f *File) { f.To = newAuthor(t, 3).id }},
		{"private: made for everyone", alice.privateFile(bob.id), func(f *File) { f.To = mesh.PeerID{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.orig.VerifyWith(keys); err != nil {
				t.Fatalf("VerifyWith(original) = %v", err)
			}
			f := tc.orig.clone()
			tc.change(&f)
			if err := f.Check(); err != nil {
				t.Fatalf("altered record fails Check (%v): the test would not reach the signature", err)
			}
			if err := f.VerifyWith(keys); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("VerifyWith(altered) = %v, want ErrBadSignature", err)
			}
		})
	}
}

// chatOver returns a chat record signed by a whose signed bytes are the
// chat domain string followed by tail, as far as tail parses as a chat
// record's: author, seq, lamport, time, a u32 length and the text.
func chatOver(t *testing.T, a author, tail []byte) Chat {
	t.Helper()
	be := binary.BigEndian
	if len(tail) < 32+24+4 || !bytes.Equal(tail[:32], a.id[:]) {
		t.Fatalf("tail %x does not start with %s", tail, a.id.Short())
	}
	c := Chat{Author: a.id, Seq: be.Uint64(tail[32:]), Lamport: be.Uint64(tail[40:]),
		Time: time.Unix(0, int64(be.Uint64(tail[48:]))), Text: string(tail[60:])}
	if n := be.Uint32(tail[56:]); int(n) != len(c.Text) {
		t.Fatalf("tail's text length %d, want %d", n, len(c.Text))
	}
	c.Sign(a.key)
	if got := c.signedBytes(); !bytes.Equal(got[len(chatDomain):], tail) {
		t.Fatalf("chat signed bytes %x, want the domain then %x", got, tail)
	}
	return c
}

// TestFileDomain: a chat signature by the author, over bytes that match the
// file record's after the domain string, does not verify as the file record.
func TestFileDomain(t *testing.T) {
	alice := newAuthor(t, 1)
	const n = 64 // path length
	// The path is shaped so that the chat's text length field lands on its
	// bytes 5 to 8 and the text runs to the end.
	path := []byte("dir/a" + strings.Repeat("x", n-5))
	binary.BigEndian.PutUint32(path[5:], uint32(50+n))
	f := File{Author: alice.id, ID: [16]byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2}, Path: string(path),
		Size: 10, BlockSize: 4096, Mode: 0o600, MTime: testTime.UnixNano(), FileHash: [32]byte{1}}
	tail := f.signedBytes()[len(fileDomain):]
	c := chatOver(t, alice, tail)
	if !ed25519.Verify(alice.pub(), append([]byte(chatDomain), tail...), c.Sig) {
		t.Fatalf("chat signature does not cover the file record's bytes: the test proves nothing")
	}
	f.Sig = c.Sig
	if err := f.Verify(alice.pub()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("File.Verify(chat signature) = %v, want ErrBadSignature", err)
	}
}

func TestFileVerifyWithKeysError(t *testing.T) {
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
			if err := alice.file().VerifyWith(tc.keys); !errors.Is(err, tc.want) {
				t.Fatalf("VerifyWith = %v, want %v wrapped", err, tc.want)
			}
		})
	}
}

func TestFileCheck(t *testing.T) {
	alice := newAuthor(t, 1)
	tests := []struct {
		name   string
		orig   File
		change func(f *File)
	}{
		{"zero author", alice.file(), func(f *File) { f.Author = mesh.PeerID{} }},
		{"empty path", alice.file(), func(f *File) { f.Path = "" }},
		{"path over MaxPath", alice.file(), func(f *File) { f.Path = strings.Repeat("x", MaxPath+1) }},
		{"path not utf-8", alice.file(), func(f *File) { f.Path = "a\xffb" }},
		{"type 3", alice.link(), func(f *File) { f.Type = 3; f.Target = "" }},
		{"type 255", alice.link(), func(f *File) { f.Type = 255; f.Target = "" }},
		{"target over MaxPath", alice.link(), func(f *File) { f.Target = strings.Repeat("x", MaxPath+1) }},
		{"target on a file", alice.file(), func(f *File) { f.Replaces = nil; f.Target = "x" }},
		{"target on a folder", alice.link(), func(f *File) { f.Type = 1 }},
		{"mode setuid", alice.file(), func(f *File) { f.Mode = 0o4644 }},
		{"mode with a type bit", alice.file(), func(f *File) { f.Mode = 0o100644 }},
		{"replaces over MaxReplaces", alice.file(), func(f *File) { f.Replaces = make([][16]byte, MaxReplaces+1) }},
		{"replaces on a folder", alice.file(), func(f *File) { f.Type = 1 }},
		{"replaces on a link", alice.link(), func(f *File) { f.Replaces = [][16]byte{{1}} }},
		{"signature 63 bytes", alice.file(), func(f *File) { f.Sig = f.Sig[:63] }},
		{"no signature", alice.file(), func(f *File) { f.Sig = nil }},
		{"private to its author", alice.privateFile(newAuthor(t, 2).id), func(f *File) { f.To = alice.id }},
		{"private folder", alice.privateFile(newAuthor(t, 2).id), func(f *File) { f.Type = 1 }},
		{"private replacing", alice.privateFile(newAuthor(t, 2).id), func(f *File) { f.Replaces = [][16]byte{{1}} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.orig.Check(); err != nil {
				t.Fatalf("Check(original) = %v", err)
			}
			f := tc.orig.clone()
			tc.change(&f)
			if len(f.Sig) == ed25519.SignatureSize {
				f.Sign(alice.key) // a real author signed it: only Check stands in the way
			}
			if err := f.Check(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Check() = %v, want ErrMalformed", err)
			}
			if err := f.Verify(alice.pub()); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Verify() = %v, want ErrMalformed", err)
			}
		})
	}
	t.Run("limits themselves", func(t *testing.T) {
		f := alice.file()
		f.Path, f.Mode = strings.Repeat("x", MaxPath), 0o777
		f.Replaces = make([][16]byte, MaxReplaces)
		f.Sign(alice.key)
		if err := f.Verify(alice.pub()); err != nil {
			t.Fatalf("Verify(at every limit) = %v", err)
		}
	})
}

// TestFileLimits pins the limits docs/records.md and the sync package
// state.
func TestFileLimits(t *testing.T) {
	if MaxPath != 4096 || MaxReplaces != 8 {
		t.Errorf("MaxPath, MaxReplaces = %d, %d, want 4096, 8", MaxPath, MaxReplaces)
	}
}
