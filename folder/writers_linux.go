package folder

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// watchProcDir is where the process table lives.
const watchProcDir = "/proc"

// seesWriters: openForWriting finds other processes' writers here.
const seesWriters = true

// openForWriting returns the identities among targets that some process (this
// one included) holds open for writing. It scans /proc/<pid>/fd: an fd
// matches when its link is the writeTarget's path or, failing that, when it
// resolves to the same device and inode (hard links, renamed paths); it
// counts as a writer when /proc/<pid>/fdinfo shows O_WRONLY or O_RDWR.
// Processes that vanish or that we may not inspect are skipped.
//
// Only inotify's CloseWrite would say "the last writer closed"; fsnotify
// v1.10 does not export it, so this scan is how the watcher knows a file
// is finished.
func openForWriting(targets []writeTarget) map[fileID]bool {
	found := make(map[fileID]bool)
	if len(targets) == 0 {
		return found
	}
	byPath := make(map[string]fileID, len(targets))
	byID := make(map[fileID]bool, len(targets))
	for _, t := range targets {
		byPath[t.Path] = t.ID
		byID[t.ID] = true
	}
	procs, err := os.ReadDir(watchProcDir)
	if err != nil {
		return found
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		scanProc(filepath.Join(watchProcDir, p.Name()), byPath, byID, found)
	}
	return found
}

// writingUnder reports whether some process holds a file at or below dir
// (a real path) open for writing: one scan of /proc/<pid>/fd for links
// that start with dir.
func writingUnder(dir string) bool {
	procs, err := os.ReadDir(watchProcDir)
	if err != nil {
		return false
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err == nil && procWritesUnder(filepath.Join(watchProcDir, p.Name()), dir) {
			return true
		}
	}
	return false
}

// procWritesUnder reports whether one process has a file at or below dir
// open for writing.
func procWritesUnder(proc, dir string) bool {
	fdDir := filepath.Join(proc, "fd")
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		dest, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err == nil && (dest == dir || strings.HasPrefix(dest, dir+"/")) &&
			fdWrites(filepath.Join(proc, "fdinfo", fd.Name())) {
			return true
		}
	}
	return false
}

// scanProc adds to found the targets that one process has open for
// writing.
func scanProc(proc string, byPath map[string]fileID, byID, found map[fileID]bool) {
	fdDir := filepath.Join(proc, "fd")
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return
	}
	for _, fd := range fds {
		id, ok := matchFD(filepath.Join(fdDir, fd.Name()), byPath, byID)
		if !ok || found[id] {
			continue
		}
		if fdWrites(filepath.Join(proc, "fdinfo", fd.Name())) {
			found[id] = true
		}
	}
}

// matchFD says which writeTarget, if any, the fd link refers to.
func matchFD(link string, byPath map[string]fileID, byID map[fileID]bool) (fileID, bool) {
	dest, err := os.Readlink(link)
	if err != nil || !strings.HasPrefix(dest, "/") {
		return fileID{}, false // gone, or a socket, pipe or anon inode
	}
	if id, ok := byPath[dest]; ok {
		return id, true
	}
	if strings.HasPrefix(dest, "/dev/") || strings.HasPrefix(dest, "/proc/") {
		return fileID{}, false
	}
	fi, err := os.Stat(link) // follows the magic link to the open file itself
	if err != nil {
		return fileID{}, false
	}
	id, ok := idOf(fi)
	return id, ok && byID[id]
}

// fdWrites reports whether the fd described by fdinfo was opened for
// writing. The flags line is octal; the access mode is its low two bits.
func fdWrites(fdinfo string) bool {
	file, err := os.Open(fdinfo)
	if err != nil {
		return false
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "flags:")
		if !ok {
			continue
		}
		flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
		if err != nil {
			return false
		}
		mode := flags & syscall.O_ACCMODE
		return mode == syscall.O_WRONLY || mode == syscall.O_RDWR
	}
	return false
}
