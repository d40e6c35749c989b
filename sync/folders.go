package sync

import (
	"fmt"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/mesh"
)

// The inbox folder of each peer: its display name made safe, fixed forever
// once chosen (folders.json).

// folderFor returns the inbox folder of a peer: its sanitised display name,
// or "<name>-<short id>" when another member already has that folder. The
// mapping is persisted, so it never changes for an ID.
func (ib *inbound) folderFor(peer mesh.PeerID) (string, error) {
	name := ib.peerName(peer)
	ib.mu.Lock()
	if f, ok := ib.folders[peer]; ok {
		ib.mu.Unlock()
		return f, nil
	}
	folder := safeName(name)
	for id, f := range ib.folders {
		if id != peer && foldKey(f) == foldKey(folder) {
			folder = safeName(folder + "-" + peer.Short())
			if foldKey(folder) == foldKey(f) || len(folder) < len(peer.Short()) {
				folder = peer.Short()
			}
			break
		}
	}
	ib.folders[peer] = folder
	snap := make(map[string]string, len(ib.folders))
	for id, f := range ib.folders {
		snap[id.String()] = f
	}
	ib.mu.Unlock()
	if err := atomicfile.WriteJSON(ib.foldersPath, snap); err != nil {
		return "", fmt.Errorf("save folder names: %w", err)
	}
	return folder, nil
}

// peerName is the display name of a peer: from events, else from the
// transport's member list, else its short ID.
func (ib *inbound) peerName(peer mesh.PeerID) string {
	if name, ok := ib.peers.name(peer); ok {
		return name
	}
	if t := ib.transport(); t != nil {
		for _, p := range t.Peers() {
			if p.ID == peer && p.Name != "" {
				ib.peers.noteName(p)
			}
		}
	}
	return ib.peers.displayName(peer)
}

// loadFolders reads folders.json at New.
func (ib *inbound) loadFolders() error {
	snap := map[string]string{}
	if err := atomicfile.ReadJSON(ib.foldersPath, &snap); err != nil {
		return err
	}
	for s, f := range snap {
		id, err := mesh.ParsePeerID(s)
		if err != nil {
			continue
		}
		ib.folders[id] = f
	}
	return nil
}

// selfName is our own display name, for reasons sent to peers.
func (ib *inbound) selfName() string {
	if t := ib.transport(); t != nil {
		return safeName(t.Name())
	}
	return "this node"
}
