//go:build linux

package fs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

func says(lines ...string) []call {
	var out []call
	for _, l := range lines {
		out = append(out, call{"say", l})
	}
	return out
}

func TestChatWrite(t *testing.T) {
	tests := []struct {
		name  string
		write func(path string) error
		want  []string
	}{
		{"lines in order", func(p string) error { return os.WriteFile(p, []byte("a\nb\n"), 0o600) }, []string{"a", "b"}},
		{"empty lines skipped", func(p string) error { return os.WriteFile(p, []byte("\na\n\n"), 0o600) }, []string{"a"}},
		{"append", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			if _, err := f.WriteString("c\n"); err != nil {
				return err
			}
			return f.Close()
		}, []string{"c"}},
		{"partial line sent at close", func(p string) error { return os.WriteFile(p, []byte("x\npartial"), 0o600) }, []string{"x", "partial"}},
		{"line split across writes", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			for _, s := range []string{"hel", "lo wor", "ld\nnext"} {
				if _, err := f.WriteString(s); err != nil {
					return err
				}
			}
			return f.Close()
		}, []string{"hello world", "next"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mountTest(t)
			if err := tc.write(m.path("chat")); err != nil {
				t.Fatal(err)
			}
			// Flush runs inside close(2), so the calls are there already.
			if got, want := m.fake.snapshot("say"), says(tc.want...); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Say calls = %v, want %v", got, want)
			}
		})
	}
}

// errnoError is a Say error that names its errno.
type errnoError struct{ errno syscall.Errno }

func (e errnoError) Error() string        { return "refused: " + e.errno.Error() }
func (e errnoError) Errno() syscall.Errno { return e.errno }

func TestChatSayRefused(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"plain error", errors.New("line too long"), syscall.EINVAL},
		{"errno method", errnoError{syscall.EMSGSIZE}, syscall.EMSGSIZE},
		{"wrapped errno", fmt.Errorf("append log: %w", syscall.ENOSPC), syscall.ENOSPC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := mountTest(t)
			m.fake.refuse("bad", tc.err)
			err := os.WriteFile(m.path("chat"), []byte("ok\nbad\n"), 0o600)
			errIs(t, "WriteFile", err, tc.want)
			errIs(t, "partial refused at close", os.WriteFile(m.path("chat"), []byte("bad"), 0o600), tc.want)
			if got, want := m.fake.snapshot("say"), says("ok"); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Say calls = %v, want %v", got, want)
			}
		})
	}
}

func TestChatLongPartialLine(t *testing.T) {
	m := mountTest(t)
	long := strings.Repeat("x", maxPending+1)
	m.fake.refuse(long, errors.New("too long"))
	errIs(t, "WriteFile", os.WriteFile(m.path("chat"), []byte(long), 0o600), syscall.EINVAL)
}

func TestChatRead(t *testing.T) {
	m := mountTest(t)
	got, err := os.ReadFile(m.path("chat"))
	if err != nil || len(got) != 0 {
		t.Fatalf("ReadFile(chat) without a log = %q, %v; want empty", got, err)
	}
	log := "10:00 alice: hi\n"
	for i := range 3 {
		f, err := os.OpenFile(m.chatLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("10:0%d bob: line %d\n", i, i)
		if i == 0 {
			line = log
		} else {
			log += line
		}
		if _, err := f.WriteString(line); err != nil {
			t.Fatal(err)
		}
		f.Close()
		// The attributes are cached for 1 ns, which the kernel rounds up
		// to one jiffy: poll.
		waitSize(t, func() (os.FileInfo, error) { return os.Stat(m.path("chat")) }, int64(len(log)))
		got, err := os.ReadFile(m.path("chat"))
		if err != nil || string(got) != log {
			t.Fatalf("ReadFile(chat) = %q, %v; want %q", got, err, log)
		}
	}
	// An open reader sees growth too (what tail -f relies on).
	f, err := os.Open(m.path("chat"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	more := "10:09 carol: more\n"
	if err := appendFile(m.chatLog, more); err != nil {
		t.Fatal(err)
	}
	waitSize(t, f.Stat, int64(len(log+more)))
}

// waitSize polls stat until it reports size.
func waitSize(t *testing.T, stat func() (os.FileInfo, error), size int64) {
	t.Helper()
	err := testutil.WaitFor(5*time.Second, func() error {
		fi, err := stat()
		if err != nil {
			return err
		}
		if fi.Size() != size {
			return fmt.Errorf("size = %d, want %d", fi.Size(), size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func TestChatTruncateKeepsLog(t *testing.T) {
	m := mountTest(t)
	if err := appendFile(m.chatLog, "old\n"); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(m.path("chat"), 0); err != nil {
		t.Fatalf("Truncate(chat): %v", err)
	}
	got, err := os.ReadFile(m.chatLog)
	if err != nil || string(got) != "old\n" {
		t.Errorf("log after truncate = %q, %v", got, err)
	}
	errIs(t, "chmod", os.Chmod(m.path("chat"), 0o644), syscall.EPERM)
	errIs(t, "setxattr", syscall.Setxattr(m.path("chat"), "user.x", []byte("1"), 0), syscall.ENOTSUP)
}

func TestPeers(t *testing.T) {
	m := mountTest(t)
	m.fake.setTable([]byte("NAME ID STATE\nalice 1234 connected\n"))
	got, err := os.ReadFile(m.path("peers"))
	if err != nil || string(got) != "NAME ID STATE\nalice 1234 connected\n" {
		t.Fatalf("ReadFile(peers) = %q, %v", got, err)
	}
	// A reader keeps its snapshot; a new open sees the new table.
	f, err := os.Open(m.path("peers"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m.fake.setTable([]byte("NAME ID STATE\nbob 5678 offline\n"))
	buf := make([]byte, 100)
	n, _ := f.Read(buf)
	if !strings.Contains(string(buf[:n]), "alice") {
		t.Errorf("snapshot read = %q, want the table at open", buf[:n])
	}
	got, err = os.ReadFile(m.path("peers"))
	if err != nil || !strings.Contains(string(got), "bob") {
		t.Errorf("ReadFile(peers) after change = %q, %v", got, err)
	}
	_, err = os.OpenFile(m.path("peers"), os.O_WRONLY, 0)
	errIs(t, "open peers for writing", err, syscall.EACCES)
	errIs(t, "truncate peers", os.Truncate(m.path("peers"), 0), syscall.EACCES)
}
