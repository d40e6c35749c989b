package sync

import (
	"errors"
	"fmt"

	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// Every manifest is signed by its author (record.File): the path, size,
// mode, time, the transfers it replaces and the file hash, which is a root
// over the block hashes and so vouches for every block. A member that
// passes a file on for its author (relay.go) sends the author's signature
// with it, and the receiver checks it before it writes a byte: a relay
// can hold a file up, but never change one unnoticed. A streamed OFFER
// comes from the author itself, before the hashes exist; its DONE brings
// the signature with them, checked before the file is placed.

// manifestRecord is the signed form of a manifest.
func manifestRecord(author mesh.PeerID, m *offerMsg) record.File {
	f := record.File{Author: author, ID: m.ID, Path: m.Path, Type: uint8(m.Type), Target: m.Target,
		Size: m.Size, BlockSize: m.BlockSize, Mode: m.Mode, MTime: m.MTime, FileHash: m.FileHash, To: m.To, Sig: m.Sig}
	for _, id := range m.Replaces {
		f.Replaces = append(f.Replaces, id)
	}
	return f
}

// signOffer signs an own OFFER (or the DONE of a streamed one, given as
// the OFFER with the manifest filled in).
func (o *outbound) signOffer(m *offerMsg) ([]byte, error) {
	f := manifestRecord(m.Author, m)
	if err := f.SignWith(o.transport().Signer()); err != nil {
		return nil, err
	}
	return f.Sig, nil
}

// checkOffer checks an OFFER's signature before anything is written: a
// file passed on must carry its author's signed manifest, and so must
// every OFFER but a streamed one (its DONE does).
func (ib *inbound) checkOffer(from mesh.PeerID, m *offerMsg) error {
	if len(m.Sig) == 0 {
		if m.Author != from || !m.streamed() {
			return refused(rejectForged, "offer without its author's signed manifest")
		}
		return nil
	}
	return ib.checkManifest(from, manifestRecord(m.Author, m))
}

// checkDoneSig checks the signature a streamed transfer's DONE brings.
func (ib *inbound) checkDoneSig(from mesh.PeerID, t *inTransfer, d *doneMsg) error {
	m := &offerMsg{ID: t.key.id, Path: t.meta.Path, Size: t.meta.Size, BlockSize: t.meta.BlockSize,
		Mode: t.meta.Mode, MTime: t.meta.MTime, Replaces: t.meta.Replaces, FileHash: d.FileHash, Sig: d.Sig}
	return ib.checkManifest(from, manifestRecord(t.key.peer, m))
}

// checkManifest verifies a manifest against its author's certified key.
// One that does not verify is counted against the member that sent it and
// named in the log; the offer is refused for good.
func (ib *inbound) checkManifest(from mesh.PeerID, f record.File) error {
	err := f.VerifyWith(ib.transport())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mesh.ErrUnknownMember):
		// Discovery brings the author's certificate; the offer comes again.
		return refused(rejectIO, "the file's author is not known here yet")
	case errors.Is(err, mesh.ErrRevoked):
		return refused(rejectForged, "the file's author was removed from the mesh")
	}
	ib.bad.add(from)
	ib.log.Warn("file manifest does not verify; refused", "peer", from, "member", ib.peers.displayName(from),
		"author", ib.peerName(f.Author), "path", f.Path, "err", err,
		"fix", "the member that sent it altered it or is broken: if it goes on, remove it with 'meshfs remove'")
	return refused(rejectForged, fmt.Sprintf("manifest of %s does not verify against its author's key", f.Path))
}
