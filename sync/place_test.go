package sync

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// The placement calls differ by system (place_unix.go, place_windows.go,
// sys_*.go); these tests pin what each must do, on every system.

// placeDirs makes a partials folder holding a.part ("new") and an inbox
// holding r.txt ("old"), and opens both.
func placeDirs(t *testing.T) (root string, parts, inbox dirFd) {
	t.Helper()
	root = t.TempDir()
	for _, f := range []struct{ path, data string }{{"parts/a.part", "new"}, {"inbox/r.txt", "old"}} {
		p := filepath.Join(root, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	parts, err := openDir(filepath.Join(root, "parts"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(parts.close)
	inbox, err = openDir(filepath.Join(root, "inbox"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inbox.close)
	return root, parts, inbox
}

func wantContent(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Errorf("%s = %q, %v; want %q", path, got, err, want)
	}
}

// TestPlaceRenameUnique: a name taken (even in another case) gets the
// next numbered name, and the file there is left alone.
func TestPlaceRenameUnique(t *testing.T) {
	root, parts, inbox := placeDirs(t)
	name, err := inbox.renameUnique(parts, "a.part", "R.TXT")
	if err != nil {
		t.Fatal(err)
	}
	if want := numberedName("R.TXT", 1); name != want {
		t.Errorf("placed as %q, want %q", name, want)
	}
	wantContent(t, filepath.Join(root, "inbox", "r.txt"), "old")
	wantContent(t, filepath.Join(root, "inbox", name), "new")
	if _, err := os.Lstat(filepath.Join(root, "parts", "a.part")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("partial still there after the rename: %v", err)
	}
	if err := inbox.sync(); err != nil {
		t.Errorf("sync: %v", err)
	}
}

// TestPlaceSubdir: a missing folder is made, an existing one is reused
// whatever its case, and a file in the way gets the folder a numbered name.
func TestPlaceSubdir(t *testing.T) {
	root, _, inbox := placeDirs(t)
	for _, tc := range []struct{ comp, want string }{
		{"docs", "docs"},
		{"DOCS", "docs"},
		{"r.txt", numberedName("r.txt", 1)},
	} {
		sub, name, err := inbox.subdir(tc.comp)
		if err != nil {
			t.Fatalf("subdir(%q): %v", tc.comp, err)
		}
		sub.close()
		if name != tc.want {
			t.Errorf("subdir(%q) = %q, want %q", tc.comp, name, tc.want)
		}
		if fi, err := os.Lstat(filepath.Join(root, "inbox", name)); err != nil || !fi.IsDir() {
			t.Errorf("inbox/%s is not a folder: %v", name, err)
		}
	}
	wantContent(t, filepath.Join(root, "inbox", "r.txt"), "old")
}

// TestPlaceSubdirLink: a link planted where a folder is wanted is never
// followed; the file lands in a real folder under a numbered name.
func TestPlaceSubdirLink(t *testing.T) {
	root, parts, inbox := placeDirs(t)
	outside := t.TempDir()
	link := filepath.Join(root, "inbox", "docs")
	if err := os.Symlink(outside, link); err != nil {
		t.Skipf("cannot make a symbolic link here: %v", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Skipf("os.Symlink made no link here (%v)", err)
	}
	sub, name, err := inbox.subdir("docs")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.close()
	if name == "docs" {
		t.Fatal("subdir reused the link")
	}
	if _, err := sub.renameUnique(parts, "a.part", "x.txt"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("the link's target got %d entries", len(ents))
	}
	wantContent(t, filepath.Join(root, "inbox", name, "x.txt"), "new")
}

// TestPlaceReplaceUnchanged: the partial replaces a name only while it is
// the very file recorded (a regular file, same inode, size and mtime); a
// link to that file, a changed file, a folder or nothing is left alone,
// with the partial still in its place.
// TestPlaceReplaceUnchanged: the partial replaces a name only while it is
// the very file recorded (a regular file, same inode, size and mtime); a
// link to that file, a changed file, a folder or nothing is left alone,
// with the partial still in its place.
func TestPlaceReplaceUnchanged(t *testing.T) {
	root, parts, inbox := placeDirs(t)
	want, regular, err := inbox.statName("r.txt")
	if err != nil || !regular {
		t.Fatalf("statName(r.txt) = %+v, %v, %v", want, regular, err)
	}
	changed := want
	changed.MTime++
	if err := os.Mkdir(filepath.Join(root, "inbox", "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	type replaceCase struct {
		name string
		id   fileID
	}
	cases := []replaceCase{{"r.txt", changed}, {"missing", want}, {"dir", want}}
	if os.Symlink("r.txt", filepath.Join(root, "inbox", "link")) == nil {
		cases = append(cases, replaceCase{"link", want}) // fstat through it would match
	}
	for _, tc := range cases {
		if ok, err := inbox.replaceUnchanged(parts, "a.part", tc.name, tc.id); ok || err != nil {
			t.Errorf("replaceUnchanged(%s, %+v) = %v, %v; want false, nil", tc.name, tc.id, ok, err)
		}
	}
	wantContent(t, filepath.Join(root, "parts", "a.part"), "new")
	if ok, err := inbox.replaceUnchanged(parts, "a.part", "r.txt", want); !ok || err != nil {
		t.Fatalf("replaceUnchanged(r.txt, unchanged) = %v, %v; want true, nil", ok, err)
	}
	wantContent(t, filepath.Join(root, "inbox", "r.txt"), "new")
	if _, err := os.Lstat(filepath.Join(root, "parts", "a.part")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("partial still there after the rename: %v", err)
	}
}

// TestRenameNoReplace: an existing target is an fs.ErrExist and both files
// stay as they were.
func TestRenameNoReplace(t *testing.T) {
	root, _, _ := placeDirs(t)
	from, to := filepath.Join(root, "parts", "a.part"), filepath.Join(root, "inbox", "r.txt")
	if err := renameNoReplace(from, to); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("rename onto an existing file: %v, want fs.ErrExist", err)
	}
	wantContent(t, from, "new")
	wantContent(t, to, "old")
	moved := filepath.Join(root, "inbox", "s.txt")
	if err := renameNoReplace(from, moved); err != nil {
		t.Fatal(err)
	}
	wantContent(t, moved, "new")
}

// TestStatfsFree: the free space is known and fits in the total.
func TestStatfsFree(t *testing.T) {
	free, total, err := statfsFree(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if total == 0 || free > total {
		t.Errorf("free %d of total %d", free, total)
	}
}
