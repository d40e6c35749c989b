package sync

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTemporaryName(t *testing.T) {
	temporary := []string{"report.pdf~", "a.tmp", "film.mkv.part", "x.crdownload", ".doc.txt.swp",
		".doc.txt.swx", "index.lock", "HEAD.lock", ".#notes.org", "#notes.org#", "4913", "sedAb12Cd",
		".goutputstream-XYZ123", ".~lock.sheet.ods#", "tmp_obj_a1B2c3", "tmp_pack_xyz", "notes.kate-swp"}
	for _, n := range temporary {
		if !temporaryName(n) {
			t.Errorf("temporaryName(%q) = false, want true", n)
		}
	}
	kept := []string{"report.pdf", ".gitignore", ".env", "config", "sedative", "sed", "#", "lock", "4914",
		"tmp", "packed-refs", "ORIG_HEAD", "a.temp.txt"}
	for _, n := range kept {
		if temporaryName(n) {
			t.Errorf("temporaryName(%q) = true, want false", n)
		}
	}
}

// TestDotFilesHeld: a dotfile is sent once it stays unchanged for DotHold;
// a dot name renamed away within the hold, as rsync's .name.XXXXXX are,
// never reaches anyone; a temporary name is never sent at all.
func TestDotFilesHeld(t *testing.T) {
	_, a, b := pair(t, func(c *Config) { c.DotHold = 200 * time.Millisecond })
	gitignore := []byte("*.o\n")
	a.put("project/.gitignore", gitignore)

	// rsync: write .name.XXXXXX, close it, rename it to name.
	data := randBytes(9, 3000)
	a.put("project/.main.go.Ab3dE9", data)
	a.put("project/main.go.tmp", data)
	// The outbox loop handles closes in order: once a later file has its
	// record, the two above were handled, and neither may have one.
	a.put("project/marker", []byte("m"))
	waitFor(t, func() bool { _, queued := a.engine().Delivery("project/marker"); return queued })
	for _, rel := range []string{"project/.main.go.Ab3dE9", "project/main.go.tmp"} {
		if _, queued := a.engine().Delivery(rel); queued {
			t.Errorf("%s queued for sending", rel)
		}
	}
	rename(t, a, "project/.main.go.Ab3dE9", "project/main.go")

	b.waitFile("inbox/alice/project/main.go", data)
	b.waitFile("inbox/alice/project/.gitignore", gitignore)
	a.put("project/.later", []byte("later")) // its hold ends after the temporary's
	b.waitFile("inbox/alice/project/.later", []byte("later"))
	for _, name := range []string{".main.go.Ab3dE9", "main.go.tmp"} {
		if exists(filepath.Join(b.root, "inbox", "alice", "project", name)) {
			t.Errorf("%s reached bob", name)
		}
	}
}

// rename moves an outbox file as a user's tool would and reports it the
// way the frontends do.
func rename(t *testing.T, fn *fakeNode, from, to string) {
	t.Helper()
	out := filepath.Join(fn.root, "outbox")
	if err := os.Rename(filepath.Join(out, from), filepath.Join(out, to)); err != nil {
		t.Fatal(err)
	}
	fn.engine().OutboxRemoved(from)
	fn.engine().OutboxClosed(to)
}

// TestUnsentSaysWhy: a file that cannot be sent stays in outbox/ with the
// reason in Unsent and Status; fixing it (here: a smaller version) sends it
// and clears the reason.
func TestUnsentSaysWhy(t *testing.T) {
	_, a, b := pair(t, func(c *Config) { c.MaxFileSize = 1 << 20 })
	big := filepath.Join(a.root, "outbox", "big.img")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 5<<20); err != nil { // sparse: nothing written
		t.Fatal(err)
	}
	a.engine().OutboxClosed("big.img")
	want := "too big: 5.0 MiB, limit 1.0 MiB (--max-file-size)"
	waitFor(t, func() bool { return a.engine().UnsentReason("big.img") == want })
	if st := a.engine().Status(); len(st.Unsent) != 1 || st.Unsent[0] != (UnsentFile{Path: "big.img", Why: want}) {
		t.Errorf("Status().Unsent = %+v, want big.img and why", st.Unsent)
	}
	if table := string(a.engine().PeersTable()); !strings.Contains(table, "not sent from outbox/:\n  big.img: "+want+"\n") {
		t.Errorf("peers table does not say why big.img is not sent:\n%s", table)
	}
	small := randBytes(3, 1000)
	a.put("big.img", small)
	b.waitFile("inbox/alice/big.img", small)
	if why := a.engine().UnsentReason("big.img"); why != "" {
		t.Errorf("reason kept after the file was sent: %q", why)
	}
}

// TestTreeMovesWhenSettled: files delivered inside a folder stay in outbox/
// while anything under the folder still changes (a program writing a tree
// must find the files it just wrote), then move to sent/ together.
func TestTreeMovesWhenSettled(t *testing.T) {
	_, a, b := pair(t, func(c *Config) { c.TreeSettle = time.Second })
	one := randBytes(1, 500)
	a.put("repo/objects/one", one)
	b.waitFile("inbox/alice/repo/objects/one", one)
	// Delivered, but the folder is still being written: it stays. Once two
	// has its record, the loop has handled one's delivery too.
	two := randBytes(2, 500)
	a.put("repo/objects/two", two)
	waitFor(t, func() bool { _, queued := a.engine().Delivery("repo/objects/two"); return queued })
	if !exists(filepath.Join(a.root, "outbox", "repo", "objects", "one")) {
		t.Fatalf("repo/objects/one left outbox/ while its folder was still being written")
	}
	b.waitFile("inbox/alice/repo/objects/two", two)
	a.waitFile("sent/repo/objects/one", one)
	a.waitFile("sent/repo/objects/two", two)
	if fi, err := os.Stat(filepath.Join(a.root, "outbox", "repo", "objects")); err != nil || !fi.IsDir() {
		t.Errorf("outbox/repo/objects after the move: %v, want the folder kept", err)
	}
}
