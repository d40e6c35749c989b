package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The mesh package keeps its files (node.key, ca.key, certificates, roster,
// revocations, invites) in <its state dir>/mesh. Earlier versions of meshfs
// gave it STATE/mesh as its state dir, so they lived in STATE/mesh/mesh.
// meshfs now gives it STATE, and migrateMeshState moves old files up once.

// meshMoving is where the old folder waits, under STATE, while it replaces
// STATE/mesh: directory renames are atomic, so a crash at any point leaves
// every file in one of three known places, and the next start finishes.
const meshMoving = ".mesh-moving"

// migrateMeshState moves STATE/mesh/mesh to STATE/mesh when STATE/mesh holds
// nothing else. When both hold files it refuses and says what to do: the
// two could be different identities, and a node key is never overwritten.
func migrateMeshState(state string) error {
	dir := filepath.Join(state, "mesh")
	old := filepath.Join(dir, "mesh")
	moving := filepath.Join(state, meshMoving)
	if err := finishMeshMove(moving, dir); err != nil {
		return err
	}
	oldFiles, err := entriesBut(old, "")
	if err != nil {
		return fmt.Errorf("mesh state: %w", err)
	}
	if len(oldFiles) == 0 {
		return removeIfEmpty(old) // nothing to move; an empty old folder goes
	}
	others, err := entriesBut(dir, "mesh")
	if err != nil {
		return fmt.Errorf("mesh state: %w", err)
	}
	if len(others) > 0 {
		return fmt.Errorf("mesh state found twice: in %s (%s, ...) and in %s, where earlier versions "+
			"kept it; move aside the copy you do not want (keep its node.key and ca.key) and mount again",
			dir, others[0], old)
	}
	if err := os.Rename(old, moving); err != nil {
		return fmt.Errorf("move mesh state from %s: %w", old, err)
	}
	return finishMeshMove(moving, dir)
}

// finishMeshMove puts STATE/.mesh-moving in place of STATE/mesh, which by
// then is empty (its only entry was the old folder) or missing.
func finishMeshMove(moving, dir string) error {
	if _, err := os.Lstat(moving); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("move mesh state into %s: it is not empty (%w); the old state is in %s", dir, err, moving)
	}
	if err := os.Rename(moving, dir); err != nil {
		return fmt.Errorf("move mesh state from %s to %s: %w", moving, dir, err)
	}
	return nil
}

// removeIfEmpty removes dir if it exists and is empty.
func removeIfEmpty(dir string) error {
	err := os.Remove(dir)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("mesh state: %w", err)
}

// entriesBut lists dir's entries except skip; a missing dir has none.
func entriesBut(dir, skip string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var names []string
	for _, e := range ents {
		if e.Name() != skip {
			names = append(names, e.Name())
		}
	}
	return names, err
}
