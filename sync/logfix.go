package sync

// The "fix" attribute of warnings: what the person reading the log can do.

// fixState is the fix for state that was not written to the state folder.
const fixState = "check free space and permissions of the state folder (--state)"

// rejectFix says what to do when member refused a file with code c.
func rejectFix(c rejectCode, member string) string {
	switch c {
	case rejectName:
		return "rename the file: " + member + "'s system cannot hold its name"
	case rejectNoSpace:
		return "ask " + member + " to free disk space; the file is offered again"
	case rejectQuota:
		return "save the file again once earlier files have reached " + member
	case rejectTooBig:
		return "ask " + member + " to raise --max-file-size, or send a smaller file"
	case rejectKind:
		return "nothing: " + member + "'s system cannot hold this kind of entry"
	case rejectForged:
		return "nothing: " + member + " could not check the file's signature; run the same meshfs version on both"
	case rejectBusy:
		return "nothing: offered again when " + member + " finishes another file"
	}
	return "nothing: offered again later; if it repeats, ask " + member + " to read its log"
}

// receiveFix says what to do when an incoming file from member was
// abandoned with err.
func receiveFix(err error, member string) string {
	switch ioCode(err) {
	case rejectNoSpace:
		return "free disk space for inbox/; " + member + " offers the file again"
	case rejectName, rejectQuota, rejectTooBig, rejectKind, rejectForged:
		return "nothing: " + member + " is told why and keeps the file"
	}
	return "nothing: " + member + " offers the file again"
}
