package sync

import (
	"errors"
	"fmt"
)

// Why a receiver refuses a transfer, as a REJECT code and a reason fit to
// send: the member learns what it can act on, never a local path.

// refusal is a reason to refuse a transfer that is fit to send to the
// member: fixed wording and figures, nothing from the local file system.
type refusal struct {
	code   rejectCode
	reason string
}

func refused(code rejectCode, reason string) error { return &refusal{code, reason} }

func (r *refusal) Error() string { return r.reason }

// ioCode maps an error to a REJECT code.
func ioCode(err error) rejectCode {
	var r *refusal
	switch {
	case errors.As(err, &r):
		return r.code
	case isNoSpace(err), errors.Is(err, ErrNoSpace):
		return rejectNoSpace
	case errors.Is(err, ErrInvalidName):
		return rejectName
	}
	return rejectIO
}

// peerReason is the text a REJECT carries for err. A refusal and a name
// check speak only of the offer itself; any other error may hold a local
// path or OS detail, so the member gets a fixed sentence and the log keeps
// the rest.
func (ib *inbound) peerReason(err error) string {
	var r *refusal
	switch {
	case errors.As(err, &r):
		return r.reason
	case errors.Is(err, ErrInvalidName):
		return "unsafe or unportable name: " + nameProblem(err)
	case isNoSpace(err), errors.Is(err, ErrNoSpace):
		return fmt.Sprintf("no space left on %s's disk", ib.selfName())
	case errors.Is(err, ErrChecksum):
		return "the file did not match its checksums"
	}
	return fmt.Sprintf("%s could not store the file (see its log)", ib.selfName())
}
