//go:build linux

package fs

import (
	"os"
	"testing"
	"time"
)

// TestOutboxAttrChangeReported: a change of mode or mtime of a file nobody
// has open for writing is a new version for the Syncer and is reported.
// The utime row is how git clone copies a loose object
// (copy_file_with_time: create, write, close, then utime by path). The
// kernel sends RELEASE without waiting for it, so the Syncer may already
// be hashing the file when the new mtime lands; the engine drops a file
// that changed while it was read and waits for the next report, which
// must therefore come.
func TestOutboxAttrChangeReported(t *testing.T) {
	past := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		change func(p string) error
	}{
		{"utime", func(p string) error { return os.Chtimes(p, past, past) }},
		{"chmod", func(p string) error { return os.Chmod(p, 0o444) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := mountTest(t)
			obj := m.path("outbox/270df7")
			if err := os.WriteFile(obj, []byte("blob 5\x00hello"), 0o644); err != nil {
				t.Fatal(err)
			}
			m.fake.waitCalls(t, "closed", closed("270df7"))
			if err := tc.change(obj); err != nil {
				t.Fatal(err)
			}
			m.fake.waitCalls(t, "closed", closed("270df7"), closed("270df7"))
		})
	}
}

// TestOutboxAttrChangeWhileWriting: a chmod through another name while a
// writer holds the file is not reported on its own; the release reports
// the file once, with its new mode.
func TestOutboxAttrChangeWhileWriting(t *testing.T) {
	m := mountTest(t)
	f, err := os.Create(m.path("outbox/w"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(m.path("outbox/w"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("w"))
	// A later file's report comes after anything w could still cause.
	if err := os.WriteFile(m.path("outbox/marker"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m.fake.waitCalls(t, "closed", closed("w"), closed("marker"))
}
