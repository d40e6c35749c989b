package record

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/meshfs/meshfs/internal/wire"
	"github.com/meshfs/meshfs/mesh"
)

// MaxPath is the longest path or link target a file record may carry, in
// bytes.
const MaxPath = 4096

// MaxReplaces is the most earlier transfers one file record replaces.
const MaxReplaces = 8

// fileDomain starts the signed bytes of a file record (see chatDomain).
const fileDomain = "meshfs file record v1\x00"

// privateFileDomain starts the signed bytes of a private file's record,
// so no signature over a file for everyone is valid for one member's.
const privateFileDomain = "meshfs private file record v1\x00"

// The entry types a file record describes (the sync package's entryType).
const (
	fileRegular = 0
	fileSymlink = 2
	fileMaxType = fileSymlink
)

// File is the manifest of one file (or folder, or symbolic link) an author
// shared, as signed by that author.
type File struct {
	Author    mesh.PeerID
	ID        [16]byte   // the transfer ID: one version of one outbox path
	Path      string     // relative, '/'-separated; non-empty, at most MaxPath bytes, UTF-8 (sync validates the rest)
	Type      uint8      // 0 file, 1 folder, 2 symbolic link (the sync package's entryType)
	Target    string     // a link's target, at most MaxPath bytes; "" unless Type is 2
	Size      uint64     // bytes
	BlockSize uint32     // bytes per block
	Mode      uint32     // permission bits only (within 0o777)
	MTime     int64      // unix nanoseconds
	Replaces  [][16]byte // earlier transfers this one replaces: at most MaxReplaces, only for Type 0
	FileHash  [32]byte   // BLAKE3 root over size, block size and the block hashes: it authenticates every block
	// To is a private file's one recipient; zero for every member. A
	// private file's blocks are a box sealed to the recipient and the
	// author (package seal), and Path names the box, not the file.
	To  mesh.PeerID
	Sig []byte // Ed25519 signature, 64 bytes, over the signed bytes
}

// Private reports whether f is a file for one member.
func (f File) Private() bool { return !f.To.IsZero() }

// signedBytes is what the author signs: the domain string, author, ID,
// type, path and target (u16 lengths), size, block size, mode, mtime, the
// replaced IDs (u8 count) and the file hash; a private file's record has
// its own domain and ends with the recipient.
func (f File) signedBytes() []byte {
	var e wire.Encoder
	if f.Private() {
		e.Raw([]byte(privateFileDomain))
	} else {
		e.Raw([]byte(fileDomain))
	}
	e.Raw(f.Author[:])
	e.Raw(f.ID[:])
	e.U8(f.Type)
	e.Str(f.Path)
	e.Str(f.Target)
	e.U64(f.Size)
	e.U32(f.BlockSize)
	e.U32(f.Mode)
	e.U64(uint64(f.MTime))
	e.U8(uint8(len(f.Replaces)))
	for _, id := range f.Replaces {
		e.Raw(id[:])
	}
	e.Raw(f.FileHash[:])
	if f.Private() {
		e.Raw(f.To[:])
	}
	return e.B
}

// Sign sets f.Sig with the author's private key. A key of the wrong size
// leaves Sig empty (ed25519.Sign would panic), which Check then refuses.
func (f *File) Sign(key ed25519.PrivateKey) {
	if len(key) != ed25519.PrivateKeySize {
		f.Sig = nil
		return
	}
	f.Sig = ed25519.Sign(key, f.signedBytes())
}

// SignWith sets f.Sig with a signer holding the author's Ed25519 key, as
// mesh.Node.Signer gives it without handing out the key itself.
func (f *File) SignWith(s crypto.Signer) error {
	sig, err := s.Sign(rand.Reader, f.signedBytes(), crypto.Hash(0))
	if err != nil {
		return fmt.Errorf("sign file record: %w", err)
	}
	f.Sig = sig
	return nil
}

// Check reports whether f is well formed, without any key. It checks the
// structure only (the sync package validates the path itself). The error
// wraps ErrMalformed and says which rule failed.
func (f File) Check() error {
	if err := f.checkFields(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// checkFields is Check without the wrapping.
func (f File) checkFields() error {
	switch {
	case f.Author.IsZero():
		return errors.New("zero author")
	case f.Path == "":
		return errors.New("empty path")
	case len(f.Path) > MaxPath:
		return fmt.Errorf("path of %d bytes over %d", len(f.Path), MaxPath)
	case !utf8.ValidString(f.Path):
		return errors.New("path is not valid utf-8")
	case f.Type > fileMaxType:
		return fmt.Errorf("type %d", f.Type)
	case len(f.Target) > MaxPath:
		return fmt.Errorf("target of %d bytes over %d", len(f.Target), MaxPath)
	case f.Target != "" && f.Type != fileSymlink:
		return fmt.Errorf("target for type %d", f.Type)
	case f.Mode&^0o777 != 0:
		return fmt.Errorf("mode %#o has bits beyond permissions", f.Mode)
	case len(f.Replaces) > MaxReplaces:
		return fmt.Errorf("%d replaced transfers over %d", len(f.Replaces), MaxReplaces)
	case len(f.Replaces) > 0 && f.Type != fileRegular:
		return fmt.Errorf("replaced transfers for type %d", f.Type)
	case f.To == f.Author:
		return errors.New("private file to its own author")
	case f.Private() && (f.Type != fileRegular || len(f.Replaces) > 0):
		return fmt.Errorf("private entry of type %d or replacing others", f.Type)
	case len(f.Sig) != ed25519.SignatureSize:
		return fmt.Errorf("signature of %d bytes, want %d", len(f.Sig), ed25519.SignatureSize)
	}
	return nil
}

// Verify checks f and then its signature under pub, which must be the
// author's own key: its ID must be f.Author. A signature that does not
// verify, or a key of another member, wraps ErrBadSignature.
func (f File) Verify(pub ed25519.PublicKey) error { return verify(f, pub) }

// VerifyWith looks up the author's current key in keys and verifies f with
// it. An author keys does not know, or has revoked, fails with keys' error
// wrapped.
func (f File) VerifyWith(keys Keys) error { return verifyWith(f, keys) }

func (f File) signer() (mesh.PeerID, string) { return f.Author, "author" }
func (f File) signature() []byte             { return f.Sig }

// is the author's to choose.
func (f File) name() string {
	return fmt.Sprintf("file record %x of %s", f.ID, f.Author.Short())
}
