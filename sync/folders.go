package sync

import (
	"fmt"

	"github.com/meshfs/meshfs/internal/atomicfile"
	"github.com/meshfs/meshfs/mesh"
)

// folderFor returns the inbox folder of a peer: its sanitised display name,
// or "<name>-<short id>" when another member already has that folder. The
// mapping is persisted, so it never changes for an ID.
func (e *Engine) folderFor(peer mesh.PeerID) (string, error) {
	name := e.peerName(peer)
	e.mu.Lock()
	if f, ok := e.folders[peer]; ok {
		e.mu.Unlock()
		return f, nil
	}
	folder := safeName(name)
	for id, f := range e.folders {
		if id != peer && foldKey(f) == foldKey(folder) {
			folder = safeName(folder + "-" + peer.Short())
			if foldKey(folder) == foldKey(f) || len(folder) < len(peer.Short()) {
				folder = peer.Short()
			}
			break
		}
	}
	e.folders[peer] = folder
	snap := make(map[string]string, len(e.folders))
	for id, f := range e.folders {
		snap[id.String()] = f
	}
	e.mu.Unlock()
	if err := atomicfile.WriteJSON(e.foldersPath, snap); err != nil {
		return "", fmt.Errorf("save folder names: %w", err)
	}
	return folder, nil
}

// peerName is the display name of a peer: from events, else from the
// transport's member list, else its short ID.
func (e *Engine) peerName(peer mesh.PeerID) string {
	e.mu.Lock()
	n, ok := e.names[peer]
	t := e.t
	e.mu.Unlock()
	if ok {
		return n
	}
	if t != nil {
		for _, p := range t.Peers() {
			if p.ID == peer && p.Name != "" {
				e.notePeer(p)
				return safeName(p.Name)
			}
		}
	}
	return peer.Short()
}

// loadFolders reads folders.json at New.
func (e *Engine) loadFolders() error {
	snap := map[string]string{}
	if err := atomicfile.ReadJSON(e.foldersPath, &snap); err != nil {
		return err
	}
	for s, f := range snap {
		id, err := mesh.ParsePeerID(s)
		if err != nil {
			continue
		}
		e.folders[id] = f
	}
	return nil
}

// selfName is our own display name, for reasons sent to peers.
func (e *Engine) selfName() string {
	if t := e.transport(); t != nil {
		return safeName(t.Name())
	}
	return "this node"
}
