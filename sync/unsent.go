package sync

import (
	"errors"
	"fmt"
	"os"

	"github.com/meshfs/meshfs/internal/present"
)

// Outbox files that are not sent, and why, for user.meshfs.state,
// meshfs status and the log.

// unsendable says why the outbox file at rel cannot be sent as it is, in
// words for its owner, or "".
func (o *outbound) unsendable(rel, abs string, fi os.FileInfo) string {
	name, _, private := privateParts(rel)
	switch {
	case private && fi.Mode()&os.ModeSymlink != 0:
		return "not sent: a symbolic link is not sent to one member"
	case private:
		if _, ok := o.memberNamed(name); !ok {
			return fmt.Sprintf("not sent: %s is not a member (see the peers file)", name)
		}
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		if why := linkProblem(rel, abs); why != "" {
			return why
		}
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("not sent: a %s, not a regular file", fileKind(fi.Mode()))
	case incomplete(abs):
		return "not sent: it was still being written when meshfs stopped; copy it again"
	case fi.Size() > o.cfg.MaxFileSize:
		return fmt.Sprintf("too big: %s, limit %s (--max-file-size)",
			present.IEC(uint64(fi.Size())), present.IEC(uint64(o.cfg.MaxFileSize)))
	}
	if _, err := validatePath(nameOf(rel)); err != nil {
		return "name not portable: " + nameProblem(err)
	}
	return ""
}

// setUnsent records why rel is not sent, for Unsent, and logs it once.
func (o *outbound) setUnsent(rel, why string, loud bool) {
	o.mu.Lock()
	prev := o.unsent[rel]
	o.unsent[rel] = why
	o.mu.Unlock()
	if prev != why || loud {
		o.log.Warn("outbox file not sent", "path", rel, "why", why,
			"fix", "deal with what why says, then save the file again: it is sent then")
	}
}

// fileKind names a file type for people.
func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// errText is an error's words without the path an *os.PathError repeats.
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Unsent lists the outbox files that are not sent, each with why: too big,
// a name other systems cannot hold, not a regular file, cut short by a
// crash, unreadable. Fixing the cause (or writing the file again) sends it.
func (e *Engine) Unsent() map[string]string {
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	out := make(map[string]string, len(e.out.unsent))
	for rel, why := range e.out.unsent {
		out[shownRel(rel)] = why
	}
	return out
}

// UnsentReason is why the outbox file rel is not sent, or "". It reads
// memory only, so FUSE can call it.
func (e *Engine) UnsentReason(rel string) string {
	rel, ok := cleanRel(rel)
	if !ok {
		return ""
	}
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	return e.out.unsent[rel]
}
