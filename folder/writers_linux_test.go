package folder

import (
	"os"
	"path/filepath"
	"testing"
)

// targetOf stats path into a writer-scan writeTarget.
func targetOf(t *testing.T, path string) writeTarget {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	id, ok := idOf(fi)
	if !ok {
		t.Fatalf("no inode for %s", path)
	}
	return writeTarget{Path: path, ID: id}
}

func TestWatchWriters(t *testing.T) {
	tests := []struct {
		name  string
		flag  int
		match func(t *testing.T, dir, path string) writeTarget // how the scan is asked
		want  bool
	}{
		{"write-only by path", os.O_WRONLY, byPath, true},
		{"read-write by path", os.O_RDWR, byPath, true},
		{"append by path", os.O_WRONLY | os.O_APPEND, byPath, true},
		{"read-only is no writer", os.O_RDONLY, byPath, false},
		{"write-only by inode only", os.O_WRONLY, byInode, true},
		{"write-only through a hard link", os.O_WRONLY, byLink, true},
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
			tgt := tc.match(t, dir, path)
			file, err := os.OpenFile(path, tc.flag, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := openForWriting([]writeTarget{tgt})[tgt.ID]; got != tc.want {
				t.Errorf("openForWriting(%v) with the file open = %v, want %v", tgt, got, tc.want)
			}
			file.Close()
			if openForWriting([]writeTarget{tgt})[tgt.ID] {
				t.Errorf("openForWriting(%v) after close = true, want false", tgt)
			}
		})
	}
}

// byPath asks for the file by its own path.
func byPath(t *testing.T, _, path string) writeTarget {
	return targetOf(t, path)
}

// byInode asks with no path, as for a chat file renamed over.
func byInode(t *testing.T, _, path string) writeTarget {
	tgt := targetOf(t, path)
	tgt.Path = ""
	return tgt
}

// byLink asks by a second name of the same file, so the fd's link
// never equals the asked path and only the inode can match.
func byLink(t *testing.T, dir, path string) writeTarget {
	link := filepath.Join(dir, "link")
	if err := os.Link(path, link); err != nil {
		t.Fatal(err)
	}
	return targetOf(t, link)
}

func TestWatchWritersNone(t *testing.T) {
	if got := openForWriting(nil); len(got) != 0 {
		t.Errorf("openForWriting(nil) = %v, want empty", got)
	}
	path := filepath.Join(t.TempDir(), "quiet")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tgt := targetOf(t, path)
	if openForWriting([]writeTarget{tgt})[tgt.ID] {
		t.Errorf("openForWriting(%v) for a closed file = true, want false", tgt)
	}
}

// TestWritingUnder: one /proc scan finds a file open for writing at any
// depth below a folder, and nothing once it is closed or only read.
func TestWritingUnder(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pack := filepath.Join(dir, "repo", "objects", "tmp_pack_1")
	if err := os.MkdirAll(filepath.Dir(pack), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(pack)
	if err != nil {
		t.Fatal(err)
	}
	for sub, want := range map[string]bool{"repo": true, "repo/objects": true, "re": false, "other": false} {
		if got := writingUnder(filepath.Join(dir, sub)); got != want {
			t.Errorf("writingUnder(%s) = %v with the pack open, want %v", sub, got, want)
		}
	}
	f.Close()
	r, err := os.Open(pack)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if writingUnder(filepath.Join(dir, "repo")) {
		t.Error("writingUnder(repo) with the pack closed and only read")
	}
}
