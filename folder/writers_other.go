//go:build !linux

package folder

// seesWriters: openForWriting finds no writers here (see below).
const seesWriters = false

// openForWriting cannot see other processes' open files without /proc, so
// it reports none: files are then sent once they stay quiet for the
// debounce delay.
func openForWriting(targets []writeTarget) map[fileID]bool {
	return make(map[fileID]bool)
}

// writingUnder cannot tell either, so it reports no writer.
func writingUnder(string) bool { return false }
