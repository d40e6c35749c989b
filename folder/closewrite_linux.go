package folder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// seesCloses: on Linux the close watcher reports every close of a file
// opened for writing, so files a writer holds need no timer.
const seesCloses = true

// closeWatcher reports files closed after writing (inotify's
// IN_CLOSE_WRITE, which fsnotify does not export) in the folders it was
// given. It has an inotify instance of its own beside fsnotify's.
type closeWatcher struct {
	fd   int      // the inotify instance, for adding watches
	file *os.File // fd, non-blocking, so Close ends a pending Read (Fd() would make it blocking)

	mu   sync.Mutex
	dirs map[int32]string // guarded by mu: watch descriptor to folder
}

// newCloseWatcher starts an inotify instance watching nothing yet.
func newCloseWatcher() (*closeWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	return &closeWatcher{fd: fd, file: os.NewFile(uintptr(fd), "inotify"), dirs: make(map[int32]string)}, nil
}

// Add watches the files directly in dir for close-after-write.
func (c *closeWatcher) Add(dir string) error {
	wd, err := unix.InotifyAddWatch(c.fd, dir, unix.IN_CLOSE_WRITE|unix.IN_ONLYDIR)
	if err != nil {
		return fmt.Errorf("watch closes in %s: %w", dir, err)
	}
	c.mu.Lock()
	c.dirs[int32(wd)] = dir
	c.mu.Unlock()
	return nil
}

// Close ends run.
func (c *closeWatcher) Close() error { return c.file.Close() }

// run reads events until Close and calls closed with the path of each
// file closed after writing; it never blocks on anything but the read.
func (c *closeWatcher) run(closed func(path string)) {
	buf := make([]byte, 256*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := c.file.Read(buf)
		if errors.Is(err, os.ErrClosed) || (err != nil && n == 0 && !errors.Is(err, unix.EINTR)) {
			return
		}
		for _, p := range c.parse(buf[:n]) {
			closed(p)
		}
	}
}

// parse turns a read of inotify events into paths, and forgets the
// folders whose watch is gone (IN_IGNORED: removed or unmounted).
func (c *closeWatcher) parse(b []byte) []string {
	var paths []string
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			break // cannot happen: the kernel writes whole events
		}
		name := string(b[unix.SizeofInotifyEvent:end])
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		dir, ok := c.dirs[ev.Wd]
		switch {
		case ev.Mask&unix.IN_IGNORED != 0:
			delete(c.dirs, ev.Wd)
		case ok && name != "" && ev.Mask&unix.IN_CLOSE_WRITE != 0:
			paths = append(paths, filepath.Join(dir, name))
		}
		b = b[end:]
	}
	return paths
}
