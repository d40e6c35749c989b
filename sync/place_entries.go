package sync

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/meshfs/meshfs/mesh"
)

// A folder or a link from a member is placed as soon as its OFFER comes:
// it has no blocks. Both are walked to from inbox/ like a file (place.go),
// never through a link. A link is made in the partials folder and renamed
// in under a free name, so it never replaces anything either.

// placeEntry makes the folder or link m offers inside the member's inbox
// folder and returns its inbox-relative path.
func (ib *inbound) placeEntry(peer mesh.PeerID, m *offerMsg) (string, error) {
	clean, err := validatePath(m.Path)
	if err != nil {
		return "", err
	}
	if m.Type == entrySymlink {
		if target, err := cleanTarget(clean, m.Target); err != nil || target != m.Target {
			return "", refused(rejectName, "link target not relative, not clean, or outside the sender's folder")
		}
	}
	folder, err := ib.folderFor(peer)
	if err != nil {
		return "", err
	}
	comps := append([]string{folder}, strings.Split(clean, "/")...)
	if m.Type == entrySymlink {
		comps = comps[:len(comps)-1]
	}
	dir, used, err := ib.walkTo(comps)
	if err != nil {
		return "", err
	}
	defer dir.close()
	if m.Type == entrySymlink {
		name, err := ib.placeLink(dir, inKey{peer, m.ID}, m.Target, path.Base(clean))
		if err != nil {
			return "", err
		}
		used = append(used, name)
	}
	if err := dir.sync(); err != nil {
		return "", fmt.Errorf("sync folder: %w", err)
	}
	return path.Join(append([]string{"inbox"}, used...)...), nil
}

// placeLink makes a link to target in the partials folder and renames it
// into dir as base or "base (n)".
func (ib *inbound) placeLink(dir dirFd, k inKey, target, base string) (string, error) {
	parts, err := openDir(ib.partsDir)
	if err != nil {
		return "", err
	}
	defer parts.close()
	tmp := partBase(k) + ".link"
	parts.remove(tmp) // left by a crash between the two steps
	if err := parts.symlink(target, tmp); err != nil {
		return "", err
	}
	name, err := dir.renameUnique(parts, tmp, base)
	if err != nil {
		parts.remove(tmp)
	}
	return name, err
}

// completeEntry remembers a placed folder or link like a received file, so
// a replayed OFFER is answered with ACK. It has no placement: a file is
// never put over it.
func (ib *inbound) completeEntry(k inKey, m *offerMsg, from mesh.PeerID) {
	now := time.Now()
	ib.mu.Lock()
	ib.completed[k] = now
	ib.mu.Unlock()
	if err := ib.journalCompleted(completedEntry{Peer: k.peer.String(), ID: k.id, At: now}); err != nil {
		ib.log.Warn("received folder or link not recorded; it may be received again after a restart", "peer", k.peer,
			"member", ib.peers.displayName(k.peer), "err", err, "fix", fixState)
	}
	ib.done(received{key: k, from: from, typ: m.Type, target: m.Target,
		meta: partialMeta{Path: m.Path, Size: m.Size, BlockSize: m.BlockSize, Mode: m.Mode, MTime: m.MTime,
			FileHash: m.FileHash, Sig: m.Sig}})
}
