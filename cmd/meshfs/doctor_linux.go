package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// minInotifyWatches is the fs.inotify.max_user_watches below which doctor
// warns: plain-folder mode (--no-fuse) watches every folder of the tree,
// and the limit is shared by all of the user's programs (editors, IDEs,
// sync tools), so a few thousand folders can use it up.
const minInotifyWatches = 65536

// inotifyWatchesPath is where Linux shows the watch limit.
const inotifyWatchesPath = "/proc/sys/fs/inotify/max_user_watches"

// localChecks are the checks that need no running node. allow_other is not
// among them: meshfs mounts without it (fs/root.go), so user_allow_other in
// /etc/fuse.conf never matters and a check would only add noise.
func localChecks() []finding {
	return []finding{checkFUSEDevice(), checkFusermount(), checkInotify(inotifyWatchesPath)}
}

func checkFUSEDevice() finding {
	const check = "fuse device"
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return warned(check, fmt.Sprintf("cannot open /dev/fuse: %v", err),
			"load the module (sudo modprobe fuse) and check /dev/fuse is crw-rw-rw-, or use --no-fuse")
	}
	f.Close()
	return passed(check, "/dev/fuse opens")
}

// checkFusermount looks for the setuid helper an unprivileged user needs to
// mount; root mounts directly.
func checkFusermount() finding {
	const check = "fusermount3"
	for _, name := range []string{"fusermount3", "fusermount"} {
		if path, err := exec.LookPath(name); err == nil {
			return passed(check, path)
		}
	}
	if os.Geteuid() == 0 {
		return passed(check, "not on PATH, and not needed: root mounts directly")
	}
	return warned(check, "neither fusermount3 nor fusermount is on PATH",
		"install fuse3 (e.g. sudo apt install fuse3), or use --no-fuse")
}

// checkInotify reads the watch limit at path (inotifyWatchesPath outside
// tests).
func checkInotify(path string) finding {
	const check = "inotify watches"
	data, err := os.ReadFile(path)
	if err != nil {
		return warned(check, fmt.Sprintf("cannot read the limit: %v", err),
			"plain-folder mode (--no-fuse) may miss changes in large trees")
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return warned(check, fmt.Sprintf("%s holds %q, not a number", path, strings.TrimSpace(string(data))),
			"compare with the output of 'sysctl fs.inotify.max_user_watches'")
	}
	if n < minInotifyWatches {
		return warned(check,
			fmt.Sprintf("fs.inotify.max_user_watches is %d, below %d: a --no-fuse tree with many folders can run out", n, minInotifyWatches),
			fmt.Sprintf("sudo sysctl -w fs.inotify.max_user_watches=%d (add it to /etc/sysctl.d/ to keep it)", 8*minInotifyWatches))
	}
	return passed(check, fmt.Sprintf("fs.inotify.max_user_watches is %d (used by --no-fuse mounts)", n))
}
