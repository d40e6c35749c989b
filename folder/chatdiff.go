package folder

import (
	"bytes"
	"strings"
)

// chatTake compares the chat file's content now (cur) with what the
// user is known not to have written (seen: the bytes we last wrote, plus
// lines already taken). If cur starts with seen, the user appended and
// the new lines are the suffix; otherwise the user wrote over the file and
// all of cur is new. While a writer still holds the file (partial), only
// complete lines are taken, so a line is never cut in two.
//
// It returns the new lines (blank ones dropped) and the new seen: the
// prefix of cur that has been taken.
func chatTake(seen, cur []byte, partial bool) (lines []string, taken []byte) {
	start := 0
	if bytes.HasPrefix(cur, seen) {
		start = len(seen)
	}
	end := len(cur)
	if partial {
		end = start + bytes.LastIndexByte(cur[start:], '\n') + 1
	}
	return chatLines(cur[start:end]), cur[:end:end]
}

// mayCutLine reports whether what the user added to the file since seen
// ends inside a line: only then does it matter whether a writer still
// holds the file, which is a scan of every process's open files (see
// openForWriting). Nothing new, or new complete lines, are taken as they
// are; that is what every reconcile after a change of the log finds.
func mayCutLine(seen, cur []byte) bool {
	start := 0
	if bytes.HasPrefix(cur, seen) {
		start = len(seen)
	}
	return len(cur) > start && cur[len(cur)-1] != '\n'
}

// chatLines splits text into trimmed, non-blank lines.
func chatLines(text []byte) []string {
	var lines []string
	for line := range strings.Lines(string(text)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// chatStartSeen decides, when the driver starts, which part of an
// existing chat file the user wrote while meshfs was not running. The log
// only grows, so a file that is the log plus more holds the user's lines
// after the log; any other file (an older log, or the user's own) holds
// nothing new.
func chatStartSeen(cur, log []byte) []byte {
	if bytes.HasPrefix(cur, log) {
		return log
	}
	return cur
}
