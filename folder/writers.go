package folder

// fileID names a file independently of its path: device and inode on
// Unix (writers_unix.go), what stands in for them on Windows
// (writers_windows.go).
type fileID struct {
	Dev, Ino uint64
}

// writeTarget is a file to check for writers: its path and its identity.
type writeTarget struct {
	Path string
	ID   fileID
}
