//go:build unix

package folder

// renameOverOpen: a file can be renamed over while processes hold it open,
// so the chat loop keeps the old file to read what a writer still adds.
const renameOverOpen = true
