//go:build linux

package fs

import (
	"os"
	"slices"
	"syscall"
	"testing"
)

func TestTree(t *testing.T) {
	m := mountTest(t)
	entries, err := os.ReadDir(m.mnt)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"chat", "dm", "inbox", "outbox", "peers", "sent", "to"}; !slices.Equal(names, want) {
		t.Fatalf("ReadDir(mount) = %v, want %v", names, want)
	}
	tests := []struct {
		name string
		mode os.FileMode
	}{
		{"outbox", os.ModeDir},
		{"sent", os.ModeDir},
		{"inbox", os.ModeDir},
		{"dm", os.ModeDir},
		{"to", os.ModeDir},
		{"chat", 0o600},
		{"peers", 0o444},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fi, err := os.Stat(m.path(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if tc.mode == os.ModeDir {
				if !fi.IsDir() {
					t.Errorf("Stat(%s) mode = %v, want a folder", tc.name, fi.Mode())
				}
				return
			}
			if fi.Mode() != tc.mode {
				t.Errorf("Stat(%s) mode = %v, want %v", tc.name, fi.Mode(), tc.mode)
			}
		})
	}
}

func TestTopFolderIsFixed(t *testing.T) {
	m := mountTest(t)
	tests := []struct {
		name string
		op   func() error
	}{
		{"create", func() error { return os.WriteFile(m.path("x"), nil, 0o600) }},
		{"mkdir", func() error { return os.Mkdir(m.path("d"), 0o700) }},
		{"rmdir outbox", func() error { return syscall.Rmdir(m.path("outbox")) }},
		{"rmdir dm", func() error { return syscall.Rmdir(m.path("dm")) }},
		{"rmdir to", func() error { return syscall.Rmdir(m.path("to")) }},
		{"unlink chat", func() error { return syscall.Unlink(m.path("chat")) }},
		{"rename peers", func() error { return os.Rename(m.path("peers"), m.path("p2")) }},
		{"symlink", func() error { return os.Symlink("chat", m.path("l")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errIs(t, tc.name, tc.op(), syscall.EPERM)
		})
	}
	for _, name := range []string{"outbox", "dm", "to"} {
		if _, err := os.Stat(m.path(name)); err != nil {
			t.Errorf("%s after rmdir: %v", name, err)
		}
	}
}

func TestMountErrors(t *testing.T) {
	m := mountTest(t)
	dir := t.TempDir()
	file := dir + "/file"
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		mnt  string
		want error
	}{
		{"missing", dir + "/missing", os.ErrNotExist},
		{"not a folder", file, ErrNotFolder},
		{"already mounted", m.mnt, ErrMounted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := Mount(Config{Mountpoint: tc.mnt, Root: dir + "/tree", ChatLog: dir + "/chat.log", Syncer: &fakeSyncer{}})
			if err == nil {
				stop(t, srv)
				t.Fatalf("Mount(%s) succeeded, want %v", tc.mnt, tc.want)
			}
			errIs(t, "Mount", err, tc.want)
		})
	}
}
