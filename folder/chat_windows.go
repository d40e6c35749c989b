package folder

// renameOverOpen: Windows refuses to rename over a file that any handle
// holds open, ours included, so the chat loop closes the chat file before
// rewriting it. A writer holding it open makes the rewrite wait for the
// next sync; no writer can be left appending to a replaced file. A line
// appended between the close and the rename is lost.
const renameOverOpen = false
