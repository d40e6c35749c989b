package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// meshFiles are what an older node left in STATE/mesh/mesh.
var meshFiles = map[string]string{
	"node.key":    "old node key",
	"node.crt":    "old node cert",
	"ca.crt":      "ca cert",
	"ca.key":      "ca key",
	"peers.json":  "{}",
	"revocations": "list",
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// wantFiles checks that dir holds exactly files, byte for byte.
func wantFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(files) {
		t.Errorf("%s holds %d entries, want %d", dir, len(ents), len(files))
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", filepath.Join(dir, name), got, err, want)
		}
	}
}

func TestMigrateMovesDoubledFolderUp(t *testing.T) {
	state := t.TempDir()
	writeFiles(t, filepath.Join(state, "mesh", "mesh"), meshFiles)
	if err := migrateMeshState(state); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, filepath.Join(state, "mesh"), meshFiles)
	if _, err := os.Lstat(filepath.Join(state, meshMoving)); err == nil {
		t.Errorf("%s left behind", meshMoving)
	}
	// Once moved, a second start changes nothing.
	if err := migrateMeshState(state); err != nil {
		t.Fatal(err)
	}
	wantFiles(t, filepath.Join(state, "mesh"), meshFiles)
}

func TestMigrateRefusesWhenBothHoldFiles(t *testing.T) {
	state := t.TempDir()
	newFiles := map[string]string{"node.key": "new node key"}
	writeFiles(t, filepath.Join(state, "mesh", "mesh"), meshFiles)
	writeFiles(t, filepath.Join(state, "mesh"), newFiles)
	err := migrateMeshState(state)
	if err == nil {
		t.Fatal("migration with state in both places succeeded")
	}
	msg := err.Error()
	for _, want := range []string{filepath.Join(state, "mesh", "mesh"), "move aside", "mount again"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	wantFiles(t, filepath.Join(state, "mesh", "mesh"), meshFiles)
	if got, _ := os.ReadFile(filepath.Join(state, "mesh", "node.key")); string(got) != "new node key" {
		t.Errorf("the new node.key changed: %q", got)
	}
}

func TestMigrateNothingToMove(t *testing.T) {
	for name, setup := range map[string]func(state string){
		"fresh state":      func(string) {},
		"current layout":   func(state string) { writeFiles(t, filepath.Join(state, "mesh"), meshFiles) },
		"empty old folder": func(state string) { writeFiles(t, filepath.Join(state, "mesh", "mesh"), nil) },
	} {
		t.Run(name, func(t *testing.T) {
			state := t.TempDir()
			setup(state)
			if err := migrateMeshState(state); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(state, "mesh", "mesh")); err == nil {
				t.Error("STATE/mesh/mesh still exists")
			}
		})
	}
}

// A start that crashed between the two renames left the old folder at
// STATE/.mesh-moving and an empty (or no) STATE/mesh: the next one finishes.
func TestMigrateFinishesAfterCrash(t *testing.T) {
	for name, keepDir := range map[string]bool{"empty mesh folder": true, "no mesh folder": false} {
		t.Run(name, func(t *testing.T) {
			state := t.TempDir()
			writeFiles(t, filepath.Join(state, meshMoving), meshFiles)
			if keepDir {
				writeFiles(t, filepath.Join(state, "mesh"), nil)
			}
			if err := migrateMeshState(state); err != nil {
				t.Fatal(err)
			}
			wantFiles(t, filepath.Join(state, "mesh"), meshFiles)
		})
	}
}
