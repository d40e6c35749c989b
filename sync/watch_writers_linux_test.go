package sync

import (
	"os"
	"path/filepath"
	"testing"
)

// watchTargetOf stats path into a writer-scan target.
func watchTargetOf(t *testing.T, path string) watchTarget {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := watchIDOf(fi)
	if !ok {
		t.Fatalf("no inode for %s", path)
	}
	return watchTarget{Path: path, ID: id}
}

func TestWatchWriters(t *testing.T) {
	tests := []struct {
		name  string
		flag  int
		match func(t *testing.T, dir, path string) watchTarget // how the scan is asked
		want  bool
	}{
		{"write-only by path", os.O_WRONLY, watchByPath, true},
		{"read-write by path", os.O_RDWR, watchByPath, true},
		{"append by path", os.O_WRONLY | os.O_APPEND, watchByPath, true},
		{"read-only is no writer", os.O_RDONLY, watchByPath, false},
		{"write-only by inode only", os.O_WRONLY, watchByInode, true},
		{"write-only through a hard link", os.O_WRONLY, watchByLink, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "f")
			if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			target := tc.match(t, dir, path)
			file, err := os.OpenFile(path, tc.flag, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := watchWriters([]watchTarget{target})[target.ID]; got != tc.want {
				t.Errorf("watchWriters(%v) with the file open = %v, want %v", target, got, tc.want)
			}
			file.Close()
			if watchWriters([]watchTarget{target})[target.ID] {
				t.Errorf("watchWriters(%v) after close = true, want false", target)
			}
		})
	}
}

// watchByPath asks for the file by its own path.
func watchByPath(t *testing.T, _, path string) watchTarget {
	return watchTargetOf(t, path)
}

// watchByInode asks with no path, as for a chat file renamed over.
func watchByInode(t *testing.T, _, path string) watchTarget {
	target := watchTargetOf(t, path)
	target.Path = ""
	return target
}

// watchByLink asks by a second name of the same file, so the fd's link
// never equals the asked path and only the inode can match.
func watchByLink(t *testing.T, dir, path string) watchTarget {
	link := filepath.Join(dir, "link")
	if err := os.Link(path, link); err != nil {
		t.Fatal(err)
	}
	return watchTargetOf(t, link)
}

func TestWatchWritersNone(t *testing.T) {
	if got := watchWriters(nil); len(got) != 0 {
		t.Errorf("watchWriters(nil) = %v, want empty", got)
	}
	path := filepath.Join(t.TempDir(), "quiet")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	target := watchTargetOf(t, path)
	if watchWriters([]watchTarget{target})[target.ID] {
		t.Errorf("watchWriters(%v) for a closed file = true, want false", target)
	}
}
