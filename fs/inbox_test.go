//go:build linux

package fs

import (
	"os"
	"slices"
	"syscall"
	"testing"
)

func TestInbox(t *testing.T) {
	m := mountTest(t)
	for _, d := range []string{"inbox/alice", "inbox/.meshfs-partials"} {
		if err := os.MkdirAll(m.backing(d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(m.backing("inbox/.meshfs-partials/x.part"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	// List the folder first so a stale negative entry would show.
	if _, err := os.ReadDir(m.path("inbox/alice")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.path("inbox/alice/r.txt")); !os.IsNotExist(err) {
		t.Fatalf("Stat before arrival: %v", err)
	}
	if err := os.WriteFile(m.backing("inbox/alice/r.txt"), []byte("report"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(m.path("inbox/alice/r.txt"))
	if err != nil || string(got) != "report" {
		t.Fatalf("ReadFile(inbox/alice/r.txt) = %q, %v; want report", got, err)
	}

	t.Run("partials invisible", func(t *testing.T) {
		entries, err := os.ReadDir(m.path("inbox"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !slices.Equal(names, []string{"alice"}) {
			t.Errorf("ReadDir(inbox) = %v, want [alice]", names)
		}
		_, err = os.Lstat(m.path("inbox/.meshfs-partials"))
		errIs(t, "Lstat(.meshfs-partials)", err, syscall.ENOENT)
		_, err = os.ReadFile(m.path("inbox/.meshfs-partials/x.part"))
		errIs(t, "ReadFile(partial)", err, syscall.ENOENT)
		errIs(t, "rename to hidden", os.Rename(m.path("inbox/alice"), m.path("inbox/.meshfs-x")), syscall.EPERM)
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name string
			op   func() error
		}{
			{"create", func() error { return os.WriteFile(m.path("inbox/alice/new"), nil, 0o600) }},
			{"create top", func() error { return os.WriteFile(m.path("inbox/new"), nil, 0o600) }},
			{"mkdir", func() error { return os.Mkdir(m.path("inbox/bob"), 0o700) }},
			{"mknod", func() error { return syscall.Mkfifo(m.path("inbox/alice/fifo"), 0o600) }},
			{"symlink", func() error { return os.Symlink("r.txt", m.path("inbox/alice/l")) }},
			{"link", func() error { return os.Link(m.path("inbox/alice/r.txt"), m.path("inbox/alice/l")) }},
			{"write", func() error {
				f, err := os.OpenFile(m.path("inbox/alice/r.txt"), os.O_WRONLY, 0)
				if err == nil {
					f.Close()
				}
				return err
			}},
			{"truncate", func() error { return os.Truncate(m.path("inbox/alice/r.txt"), 0) }},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				errIs(t, tc.name, tc.op(), syscall.EPERM)
			})
		}
	})

	t.Run("rename and delete", func(t *testing.T) {
		if err := os.Rename(m.path("inbox/alice/r.txt"), m.path("inbox/alice/report.txt")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(m.path("inbox/alice/report.txt")); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(m.path("inbox/alice")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(m.backing("inbox/.meshfs-partials/x.part")); err != nil {
			t.Errorf("partial after deletes: %v", err)
		}
	})
	if got := m.fake.snapshot(""); len(got) != 0 {
		t.Errorf("Syncer calls from inbox operations: %v", got)
	}
}

func TestSent(t *testing.T) {
	m := mountTest(t)
	if err := os.WriteFile(m.backing("sent/f"), []byte("done"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(m.path("sent/f"))
	if err != nil || string(got) != "done" {
		t.Fatalf("ReadFile(sent/f) = %q, %v", got, err)
	}
	errIs(t, "create in sent", os.WriteFile(m.path("sent/g"), nil, 0o600), syscall.EPERM)
	errIs(t, "mkdir in sent", os.Mkdir(m.path("sent/d"), 0o700), syscall.EPERM)
	if err := os.Rename(m.path("sent/f"), m.path("sent/f2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m.path("sent/f2")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.backing("sent/f2")); !os.IsNotExist(err) {
		t.Errorf("backing sent/f2 after remove: %v", err)
	}
}
