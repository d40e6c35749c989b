package fs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is returned by Available when this machine cannot mount
// FUSE file systems.
var ErrUnavailable = errors.New("FUSE is unavailable")

// Available returns nil if /dev/fuse can be opened and a mount is possible
// (as root, or with fusermount3/fusermount on PATH), else an error a user
// understands.
func Available() error {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w (%w); use --no-fuse for a plain folder", ErrUnavailable, err)
	}
	f.Close()
	if os.Geteuid() == 0 {
		return nil
	}
	if _, err := fusermount(); err != nil {
		return fmt.Errorf("%w: not root and %w; use --no-fuse for a plain folder", ErrUnavailable, err)
	}
	return nil
}

// ClearStale lazily unmounts a dead FUSE mount at mountpoint, as left by a
// daemon that crashed: stat fails with ENOTCONN. A plain folder, a missing
// one, or a live mount (another node still serves it) is left alone; Mount
// then reports ErrMounted for the live one.
func ClearStale(mountpoint string) error {
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return fmt.Errorf("clear stale mount %s: %w", mountpoint, err)
	}
	if _, err := os.Stat(abs); errors.Is(err, syscall.ENOTCONN) {
		return lazyUnmount(abs)
	}
	return nil
}

// lazyUnmount detaches the mount at mnt even when it is busy: unmount(2)
// with MNT_DETACH as root, else fusermount3 -u -z (or fusermount).
func lazyUnmount(mnt string) error {
	if os.Geteuid() == 0 {
		err := unix.Unmount(mnt, unix.MNT_DETACH)
		if err == nil {
			return nil
		}
		if _, ferr := fusermount(); ferr != nil {
			return fmt.Errorf("lazy unmount %s: %w", mnt, err)
		}
	}
	bin, err := fusermount()
	if err != nil {
		return fmt.Errorf("lazy unmount %s: %w", mnt, err)
	}
	out, err := exec.Command(bin, "-u", "-z", mnt).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lazy unmount %s: %s -u -z: %w: %s", mnt, bin, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// fusermount returns the path of fusermount3 or fusermount.
func fusermount() (string, error) {
	for _, name := range []string{"fusermount3", "fusermount"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no fusermount3 or fusermount on PATH")
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	point  string
	fstype string
}

// mountAt returns the last (topmost) mount whose mount point is mnt.
func mountAt(mnt string) (mount, bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return mount{}, false, err
	}
	defer f.Close()
	var (
		found mount
		ok    bool
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if m, valid := parseMountinfo(sc.Text()); valid && m.point == mnt {
			found, ok = m, true
		}
	}
	if err := sc.Err(); err != nil {
		return mount{}, false, fmt.Errorf("read mountinfo: %w", err)
	}
	return found, ok, nil
}

// parseMountinfo parses one mountinfo line (proc(5)):
// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw".
func parseMountinfo(line string) (mount, bool) {
	fields := strings.Fields(line)
	if len(fields) < 7 {
		return mount{}, false
	}
	for i := 6; i < len(fields)-1; i++ {
		if fields[i] == "-" {
			return mount{point: unescapeMount(fields[4]), fstype: fields[i+1]}, true
		}
	}
	return mount{}, false
}

// unescapeMount decodes the octal escapes (\040 for a space) mountinfo uses.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
