//go:build linux

package fs

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
	"golang.org/x/sys/unix"
)

// waitDone fails the test unless srv.Wait returns within a few seconds.
func waitDone(t *testing.T, srv *Server) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		srv.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return")
	}
}

func mountedAt(t *testing.T, mnt string) bool {
	t.Helper()
	_, found, err := mountAt(mnt)
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestUnmountBusy(t *testing.T) {
	m := mountTest(t)
	f, err := os.Create(m.path("outbox/held"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.srv.Unmount(); err != nil {
		f.Close()
		t.Fatalf("Unmount with a file open: %v", err)
	}
	if mountedAt(t, m.mnt) {
		t.Error("mount point still mounted after Unmount")
	}
	// The detached mount still serves the open file.
	if _, err := f.WriteString("still served"); err != nil {
		t.Errorf("write after lazy unmount: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("close after lazy unmount: %v", err)
	}
	waitDone(t, m.srv)
	if err := m.srv.Unmount(); err != nil {
		t.Errorf("second Unmount: %v", err)
	}
}

func TestClearStale(t *testing.T) {
	t.Run("plain folder", func(t *testing.T) {
		dir := t.TempDir()
		if err := ClearStale(dir); err != nil {
			t.Fatalf("ClearStale(plain folder) = %v, want nil", err)
		}
		if err := ClearStale(dir + "/missing"); err != nil {
			t.Fatalf("ClearStale(missing) = %v, want nil", err)
		}
	})
	t.Run("dead mount", func(t *testing.T) {
		mnt := deadMount(t)
		if _, err := os.Stat(mnt); !errors.Is(err, syscall.ENOTCONN) {
			t.Fatalf("Stat(dead mount) = %v, want ENOTCONN", err)
		}
		_, err := Mount(Config{Mountpoint: mnt, Root: t.TempDir(), ChatLog: "/nonexistent", Syncer: &fakeSyncer{}})
		errIs(t, "Mount on a dead mount", err, ErrMounted)
		if err := ClearStale(mnt); err != nil {
			t.Fatalf("ClearStale(dead mount) = %v", err)
		}
		if _, err := os.Stat(mnt); err != nil {
			t.Fatalf("Stat after ClearStale: %v", err)
		}
	})
	t.Run("live mount is left alone", func(t *testing.T) {
		m := mountTest(t)
		if err := ClearStale(m.mnt); err != nil {
			t.Fatalf("ClearStale(live mount) = %v", err)
		}
		if !mountedAt(t, m.mnt) {
			t.Fatal("ClearStale detached a live mount")
		}
	})
}

// deadMount mounts a FUSE file system whose server is gone (its /dev/fuse
// descriptor closed), as a crashed daemon leaves behind.
func deadMount(t *testing.T) string {
	t.Helper()
	testutil.RequireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to call mount(2)")
	}
	mnt := t.TempDir()
	fd, err := syscall.Open("/dev/fuse", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0", fd)
	if err := unix.Mount("meshfs-test", mnt, "fuse.meshfs-test", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		syscall.Close(fd)
		t.Fatalf("mount: %v", err)
	}
	syscall.Close(fd)
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	return mnt
}

func TestAvailable(t *testing.T) {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("no /dev/fuse: %v", err)
	}
	if err := Available(); err != nil && os.Geteuid() == 0 {
		t.Errorf("Available() = %v as root with /dev/fuse", err)
	}
}

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		line string
		want mount
		ok   bool
	}{
		{"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue", mount{"/mnt2", "ext3"}, true},
		{"50 24 0:45 / /home/a/my\\040mesh rw,nosuid - fuse.meshfs meshfs rw", mount{"/home/a/my mesh", "fuse.meshfs"}, true},
		{"50 24 0:45 / /x rw shared:1 master:2 - fuse /dev/fuse rw", mount{"/x", "fuse"}, true},
		{"garbage", mount{}, false},
		{"1 2 3 4 5 6 7", mount{}, false},
	}
	for _, tc := range tests {
		got, ok := parseMountinfo(tc.line)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseMountinfo(%q) = %v, %v, want %v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/plain", "/plain"},
		{`/a\040b`, "/a b"},
		{`/tab\011x\134y`, "/tab\tx\\y"},
		{`/short\04`, `/short\04`},
		{`/bad\999`, `/bad\999`},
	}
	for _, tc := range tests {
		if got := unescapeMount(tc.in); got != tc.want {
			t.Errorf("unescapeMount(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
