//go:build linux

package fs

import (
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeDeliveries holds each fakeSyncer's delivery states (rel -> member ->
// state), kept here so the shared fake stays unchanged.
var fakeDeliveries = struct {
	sync.Mutex
	m map[*fakeSyncer]map[string]map[string]string
}{m: map[*fakeSyncer]map[string]map[string]string{}}

func (f *fakeSyncer) Delivery(rel string) (map[string]string, bool) {
	fakeDeliveries.Lock()
	defer fakeDeliveries.Unlock()
	members, ok := fakeDeliveries.m[f][rel]
	return members, ok
}

func (f *fakeSyncer) setDelivery(rel string, members map[string]string) {
	fakeDeliveries.Lock()
	defer fakeDeliveries.Unlock()
	if fakeDeliveries.m[f] == nil {
		fakeDeliveries.m[f] = map[string]map[string]string{}
	}
	fakeDeliveries.m[f][rel] = members
}

// listXattr returns the attribute names of p, asking for the size first as
// getfattr does.
func listXattr(t *testing.T, p string) []string {
	t.Helper()
	sz, err := unix.Listxattr(p, nil)
	if err != nil {
		t.Fatalf("listxattr size %s: %v", p, err)
	}
	buf := make([]byte, sz)
	n, err := unix.Listxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var names []string
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	return names
}

// getXattr returns one attribute's value, asking for the size first.
func getXattr(p, name string) (string, error) {
	sz, err := unix.Getxattr(p, name, nil)
	if err != nil {
		return "", err
	}
	buf := make([]byte, sz)
	n, err := unix.Getxattr(p, name, buf)
	return string(buf[:n]), err
}

func TestOutboxDeliveryXattrs(t *testing.T) {
	m := mountTest(t)
	m.fake.setDelivery("dir/a.txt", map[string]string{"bob": "verified", "carol": "sending 43%", "dave": "refused: NOSPACE"})
	if err := os.MkdirAll(m.path("outbox/dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	m.fake.setUnsent("big.img", "too big: 5.0 GiB, limit 4.0 GiB (--max-file-size)")
	for _, name := range []string{"dir/a.txt", "b.txt", "big.img"} {
		if err := os.WriteFile(m.path("outbox/"+name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := m.path("outbox/dir/a.txt")
	if err := unix.Setxattr(a, "user.comment", []byte("mine"), 0); err != nil {
		t.Fatalf("set own xattr: %v", err)
	}
	m.fake.waitCallSet(t, "closed", closed("dir"), closed("dir/a.txt"), closed("b.txt"), closed("big.img"))

	want := []string{"user.comment", "user.meshfs.bob", "user.meshfs.carol", "user.meshfs.dave", "user.meshfs.state"}
	if got := listXattr(t, a); !slices.Equal(got, want) {
		t.Errorf("list = %q, want %q", got, want)
	}
	tests := []struct {
		name, path, attr, want string
		err                    error
	}{
		{"verified member", a, "user.meshfs.bob", "verified", nil},
		{"sending member", a, "user.meshfs.carol", "sending 43%", nil},
		{"refused member", a, "user.meshfs.dave", "refused: NOSPACE", nil},
		{"summary", a, "user.meshfs.state", "1 of 3 verified", nil},
		{"user attribute passes through", a, "user.comment", "mine", nil},
		{"unknown member", a, "user.meshfs.erin", "", syscall.ENODATA},
		{"mark hidden", a, "user.meshfs.incomplete", "", syscall.ENODATA},
		{"not queued", m.path("outbox/b.txt"), "user.meshfs.state", "not queued", nil},
		{"not sent, and why", m.path("outbox/big.img"), "user.meshfs.state", "too big: 5.0 GiB, limit 4.0 GiB (--max-file-size)", nil},
		{"folder has no state", m.path("outbox/dir"), "user.meshfs.state", "", syscall.ENODATA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := getXattr(tc.path, tc.attr)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("getxattr %s = %q, %v; want %q, %v", tc.attr, got, err, tc.want, tc.err)
			}
		})
	}
	if err := unix.Setxattr(a, "user.meshfs.bob", []byte("verified"), 0); !errors.Is(err, syscall.EPERM) {
		t.Errorf("set user.meshfs.bob: err = %v, want EPERM", err)
	}
	if err := unix.Removexattr(a, "user.meshfs.state"); !errors.Is(err, syscall.EPERM) {
		t.Errorf("remove user.meshfs.state: err = %v, want EPERM", err)
	}
}

// TestOutboxIncompleteMark: a file open for writing carries the
// unfinished-writer mark in the backing tree (sync skips such files at
// startup); the last close clears it before reporting the file.
func TestOutboxIncompleteMark(t *testing.T) {
	m := mountTest(t)
	f, err := os.Create(m.path("outbox/big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Getxattr(m.backing("outbox/big.bin"), xattrIncomplete, nil); err != nil {
		t.Errorf("backing mark while open: %v", err)
	}
	if got, err := getXattr(m.path("outbox/big.bin"), xattrState); got != stateWriting || err != nil {
		t.Errorf("state while open = %q, %v; want %q", got, err, stateWriting)
	}
	second, err := os.OpenFile(m.path("outbox/big.bin"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.waitWriters(t, 1)
	if _, err := unix.Getxattr(m.backing("outbox/big.bin"), xattrIncomplete, nil); err != nil {
		t.Errorf("backing mark with one writer left: %v", err)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("big.bin"))
	if _, err := unix.Getxattr(m.backing("outbox/big.bin"), xattrIncomplete, nil); !errors.Is(err, syscall.ENODATA) {
		t.Errorf("backing mark after last close: err = %v, want ENODATA", err)
	}
	// Reopening for writing marks it again.
	g, err := os.OpenFile(m.path("outbox/big.bin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := unix.Getxattr(m.backing("outbox/big.bin"), xattrIncomplete, nil); err != nil {
		t.Errorf("backing mark after reopen: %v", err)
	}
}
