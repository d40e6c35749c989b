package sync

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Besides files, outbox/ holds folders and symbolic links. An empty folder
// is sent so that it exists at the receivers too (a folder with content
// comes with its files). A symbolic link is sent when its target stays
// inside outbox/, so that it points at the same file inside the sender's
// inbox folder at each receiver: rsync's --safe-links and Syncthing do the
// same, and a link to /etc or ~ would mean something else on every machine.

// entryType is what an OFFER describes.
type entryType uint8

const (
	entryFile    entryType = 0 // a regular file, sent in blocks
	entryFolder  entryType = 1 // an empty folder
	entrySymlink entryType = 2 // a symbolic link; the OFFER carries its target
)

// String names the type, in records and logs.
func (t entryType) String() string {
	switch t {
	case entryFile:
		return "file"
	case entryFolder:
		return "folder"
	case entrySymlink:
		return "symlink"
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// MarshalText stores the type by name; records of files omit it.
func (t entryType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a stored type.
func (t *entryType) UnmarshalText(b []byte) error {
	for _, c := range []entryType{entryFile, entryFolder, entrySymlink} {
		if string(b) == c.String() {
			*t = c
			return nil
		}
	}
	return fmt.Errorf("entry type %q", b)
}

// checkEntry is the decoder's check of an OFFER's type against its other
// fields: only a file has bytes, only a link has a target.
func checkEntry(m *offerMsg, blocks uint32) error {
	switch m.Type {
	case entryFile:
		if m.Target != "" {
			return fmt.Errorf("file with a link target: %w", errProto)
		}
	case entryFolder, entrySymlink:
		if m.Size != 0 || blocks != 0 {
			return fmt.Errorf("%s with %d bytes: %w", m.Type, m.Size, errProto)
		}
		if (m.Type == entrySymlink) != (m.Target != "") {
			return fmt.Errorf("%s with target %q: %w", m.Type, m.Target, errProto)
		}
		if len(m.Replaces) > 0 { // only a file's placement is ever replaced
			return fmt.Errorf("%s replacing a transfer: %w", m.Type, errProto)
		}
	default:
		return fmt.Errorf("entry type %d: %w", m.Type, errProto)
	}
	return nil
}

// errLinkOutside: a link whose target leaves the tree it is sent in.
var errLinkOutside = errors.New("points outside outbox/")

// cleanTarget checks the target of a link at rel (both '/'-separated,
// relative to outbox/ or to the sender's inbox folder) and returns it in
// clean form. The target must be relative and stay inside the tree.
//
// Clean form matters at the receiver: it has ".." only as leading
// components, which climb through the real folders meshfs made (placement
// never passes through a link), so the lexical check is the real one. A
// ".." after a link's name could climb out of wherever that link points.
func cleanTarget(rel, target string) (string, error) {
	switch {
	case target == "" || len(target) > maxPathLen:
		return "", fmt.Errorf("link target of %d bytes: %w", len(target), ErrInvalidName)
	case !utf8.ValidString(target) || strings.ContainsAny(target, "\x00\\"):
		return "", fmt.Errorf("link target %q: %w", target, ErrInvalidName)
	case path.IsAbs(target) || len(target) > 1 && target[1] == ':':
		return "", fmt.Errorf("absolute link target: %w", errLinkOutside)
	}
	clean := path.Clean(target)
	if in := path.Join(path.Dir(rel), clean); in == ".." || strings.HasPrefix(in, "../") {
		return "", fmt.Errorf("link target %q: %w", target, errLinkOutside)
	}
	return clean, nil
}

// linkRecord makes the record of the link at abs. unsendable has checked
// its target.
func (o *outbound) linkRecord(rel, abs string, fi os.FileInfo) (*outRecord, error) {
	target, err := os.Readlink(abs)
	if err != nil {
		return nil, err
	}
	clean, err := cleanTarget(rel, filepath.ToSlash(target))
	if err != nil {
		return nil, err
	}
	rec := o.recordOf(rel, versionOf(fi), emptyManifest(o.cfg.BlockSize))
	rec.Type, rec.Target = entrySymlink, clean
	return rec, nil
}

// emptyManifest is the manifest of an entry without bytes.
func emptyManifest(blockSize int) manifest {
	return manifest{Hash: blockHashName, BlockSize: blockSize, FileHash: fileHashOf(0, uint32(blockSize), nil), Blocks: []hash32{}}
}

// outboxFolder sends the folder at rel if it still holds nothing to send
// once its hold is over: a folder with files arrives with them.
func (o *outbound) outboxFolder(rel, abs string, fi os.FileInfo) {
	if _, _, private := privateParts(rel); private {
		return // only files go to one member: a folder arrives with the files in it
	}
	ents, err := os.ReadDir(abs)
	if err != nil {
		return
	}
	for _, ent := range ents {
		if !temporaryName(ent.Name()) {
			return
		}
	}
	if old := o.recordFor(rel); old != nil && old.Type == entryFolder {
		return
	}
	if _, err := validatePath(rel); err != nil {
		o.setUnsent(rel, "name not portable: "+nameProblem(err), false)
		return
	}
	rec := o.recordOf(rel, versionOf(fi), emptyManifest(o.cfg.BlockSize))
	rec.Type = entryFolder
	o.addRecord(rec)
}

// linkProblem says why the link at abs is not sent, or "".
func linkProblem(rel, abs string) string {
	target, err := os.Readlink(abs)
	if err != nil {
		return "unreadable: " + errText(err)
	}
	if _, err := cleanTarget(rel, filepath.ToSlash(target)); err != nil {
		if errors.Is(err, errLinkOutside) {
			return "not sent: a symbolic link to a place outside outbox/"
		}
		return "not sent: a symbolic link whose target other systems cannot hold"
	}
	return ""
}
