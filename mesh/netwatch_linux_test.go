package mesh

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// nlMsg builds one netlink message of type typ with body.
func nlMsg(typ uint16, body []byte) []byte {
	b := make([]byte, syscall.NLMSG_HDRLEN, syscall.NLMSG_HDRLEN+len(body)+3)
	binary.NativeEndian.PutUint32(b[0:], uint32(syscall.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	b = append(b, body...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// linkBody is an ifinfomsg followed by one attribute of type attr.
func linkBody(attr uint16) []byte {
	b := make([]byte, syscall.SizeofIfInfomsg+8)
	binary.NativeEndian.PutUint16(b[syscall.SizeofIfInfomsg:], 8)
	binary.NativeEndian.PutUint16(b[syscall.SizeofIfInfomsg+2:], attr)
	return b
}

func TestRelevantNetlink(t *testing.T) {
	addr := make([]byte, syscall.SizeofIfAddrmsg)
	cases := []struct {
		name string
		b    []byte
		want bool
	}{
		{"new address", nlMsg(syscall.RTM_NEWADDR, addr), true},
		{"address deleted", nlMsg(syscall.RTM_DELADDR, addr), true},
		{"route deleted", nlMsg(syscall.RTM_DELROUTE, make([]byte, syscall.SizeofRtMsg)), true},
		{"link state", nlMsg(syscall.RTM_NEWLINK, linkBody(syscall.IFLA_OPERSTATE)), true},
		{"wireless event", nlMsg(syscall.RTM_NEWLINK, linkBody(syscall.IFLA_WIRELESS)), false},
		{"neighbour", nlMsg(syscall.RTM_NEWNEIGH, make([]byte, 12)), false},
		{"neighbour then address", append(nlMsg(syscall.RTM_NEWNEIGH, make([]byte, 12)), nlMsg(syscall.RTM_NEWADDR, addr)...), true},
		{"truncated", nlMsg(syscall.RTM_NEWNEIGH, make([]byte, 12))[:20], true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := relevantNetlink(tc.b); got != tc.want {
				t.Errorf("relevantNetlink(%x) = %v, want %v", tc.b, got, tc.want)
			}
		})
	}
}

// inNewNetns opens a route socket in a new network namespace, held by a
// locked thread until the test ends, and returns it with a command that
// runs ip in that namespace. It skips without root, ip or nsenter.
func inNewNetns(t *testing.T) (*os.File, func(args ...string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	for _, tool := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s: %v", tool, err)
		}
	}
	type opened struct {
		f   *os.File
		tid int
		err error
	}
	res, stop, exited := make(chan opened, 1), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			res <- opened{err: err}
			return
		}
		f, err := openNetlink()
		res <- opened{f, syscall.Gettid(), err}
		<-stop // the namespace's /proc path lives as long as the thread
	}()
	t.Cleanup(func() { close(stop); <-exited })
	o := <-res
	if o.err != nil {
		t.Skipf("no network namespace: %v", o.err)
	}
	t.Cleanup(func() { o.f.Close() })
	ns := fmt.Sprintf("--net=/proc/%d/task/%d/ns/net", os.Getpid(), o.tid)
	return o.f, func(args ...string) {
		t.Helper()
		if out, err := exec.Command("nsenter", append([]string{ns, "ip"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
}

// TestWatchRoutes: in a network namespace of its own, an address added is
// one change, a burst of five is one change too, and closing the socket
// stops the watcher.
func TestWatchRoutes(t *testing.T) {
	f, ip := inNewNetns(t)
	changes, done := make(chan struct{}, 16), make(chan error, 1)
	go func() { done <- watchRoutes(f, func() { changes <- struct{}{} }) }()
	// expect waits for one change, then 600 ms (three settleDelays) for a second
	// one, which must not come.
	expect := func() {
		t.Helper()
		select {
		case <-changes:
		case <-time.After(5 * time.Second):
			t.Fatal("no change seen")
		}
		select {
		case <-changes:
			t.Error("one burst seen as two changes")
		case <-time.After(600 * time.Millisecond):
		}
	}
	ip("addr", "add", "10.77.0.1/24", "dev", "lo")
	expect()
	batch := filepath.Join(t.TempDir(), "batch")
	var cmds []byte
	for i := range 5 {
		cmds = fmt.Appendf(cmds, "addr add 10.77.1.%d/24 dev lo\n", i+1)
	}
	if err := os.WriteFile(batch, cmds, 0o600); err != nil {
		t.Fatal(err)
	}
	ip("-batch", batch)
	expect()
	f.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("watchRoutes after Close = %v, want %v", err, os.ErrClosed)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watchRoutes did not stop when its socket closed")
	}
}
