package sync

// A received file is placed by walking from inbox/ one folder at a time
// through open folder handles, never following a link, and renamed in
// without replacing anything: place_unix.go does it with *at calls,
// place_windows.go with handle-relative NT calls.

// maxNumbered bounds the "name (n).ext" search.
const maxNumbered = 10000
