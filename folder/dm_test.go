package folder

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// The warnings the dm tests wait for.
const (
	msgStray      = "file under dm/ is no member's; nothing in it is sent"
	msgRemoved    = "private lines not sent: no longer a member"
	msgSayToGone  = "private line not sent: no longer a member"
	msgMemberGone = "member gone; its dm file stays and sends nothing"
)

// waitDMIsLog waits until dm/name holds exactly the log of that
// conversation, and the log holds every one of want.
func (h *harness) waitDMIsLog(t *testing.T, name string, want ...string) {
	t.Helper()
	h.waitFor(t, "dm/"+name+" to read as its log", func() error {
		log, err := readLog(h.syncer.dmLog(name))
		if err != nil {
			return err
		}
		file, err := os.ReadFile(h.path("dm/" + name))
		if err != nil {
			return err
		}
		for _, w := range want {
			if !bytes.Contains(log, []byte(w)) {
				return fmt.Errorf("log %q lacks %q", log, w)
			}
		}
		if !bytes.Equal(file, log) {
			return fmt.Errorf("dm/%s = %q, log = %q", name, file, log)
		}
		return nil
	})
}

// wantSaidTo checks that SayTo was called with exactly these lines
// ("name: text"), in order, and Say not at all.
func (h *harness) wantSaidTo(t *testing.T, want ...string) {
	t.Helper()
	if got := h.syncer.saidToSnapshot(); !slices.Equal(got, want) {
		t.Errorf("SayTo calls = %q, want %q", got, want)
	}
	h.wantSaid(t)
}

// waitLogged waits until msg was logged at least n times.
func (h *harness) waitLogged(t *testing.T, msg string, n int) {
	t.Helper()
	h.waitFor(t, fmt.Sprintf("%q logged %d times", msg, n), func() error {
		if got := h.logs.count(msg); got < n {
			return fmt.Errorf("logged %d times", got)
		}
		return nil
	})
}

// settle waits until the chat loop has handled every change made before
// the call (our own rewrites' events included): a stray file made now is
// warned about only after them, as the debouncer hands paths out in the
// order they went quiet. The file is removed again.
func (h *harness) settle(t *testing.T) {
	t.Helper()
	n := h.logs.count(msgStray)
	name := fmt.Sprintf("dm/settle-%d", n)
	writeFile(t, h.path(name), "x\n")
	h.waitLogged(t, msgStray, n+1)
	if err := os.Remove(h.path(name)); err != nil {
		t.Fatal(err)
	}
}

// wantFile checks the content of a file in the tree.
func (h *harness) wantFile(t *testing.T, rel, want string) {
	t.Helper()
	got, err := os.ReadFile(h.path(rel))
	if err != nil || string(got) != want {
		t.Errorf("%s = %q, %v; want %q", rel, got, err, want)
	}
}

// TestFolderDMStart: each member has a file under dm/ holding its log,
// one that has no log yet an empty file, and no other file is made.
func TestFolderDMStart(t *testing.T) {
	h := startTreeMembers(t, []string{"carol", "bob"}, nil)
	h.waitDMIsLog(t, "bob")
	h.settle(t)
	if err := h.syncer.appendDM("bob", "bob: hi\n"); err != nil {
		t.Fatal(err)
	}
	h.waitDMIsLog(t, "bob", "bob: hi")
	h.waitFor(t, "dm/carol", func() error {
		_, err := os.Stat(h.path("dm/carol"))
		return err
	})
	h.wantFile(t, "dm/carol", "")
	entries, err := os.ReadDir(h.path("dm"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"bob", "carol"}) {
		t.Errorf("dm/ holds %q, want [bob carol]", names)
	}
	h.wantSaidTo(t)
}

// TestFolderDMSay: a line appended to dm/bob goes to SayTo("bob") once,
// and never to chat or another member; a line bob's log gains appears in
// dm/bob.
func TestFolderDMSay(t *testing.T) {
	h := startTreeMembers(t, []string{"bob", "carol"}, nil)
	h.waitDMIsLog(t, "bob")
	appendText(t, h.path("dm/bob"), "hello bob\n")
	h.waitDMIsLog(t, "bob", "me: hello bob")
	h.wantSaidTo(t, "bob: hello bob")

	h.settle(t)
	if err := h.syncer.appendDM("bob", "bob: hello back\n"); err != nil {
		t.Fatal(err)
	}
	h.waitDMIsLog(t, "bob", "me: hello bob", "bob: hello back")

	writeFile(t, h.path("dm/carol"), "written over\n")
	h.waitDMIsLog(t, "carol", "me: written over")
	h.waitDMIsLog(t, "bob", "bob: hello back")
	h.wantSaidTo(t, "bob: hello bob", "carol: written over")
	h.waitChatIsLog(t)
}

// TestFolderDMMemberAdded: a member added later gets a file, which sends.
func TestFolderDMMemberAdded(t *testing.T) {
	h := startTreeMembers(t, []string{"bob"}, nil)
	h.waitDMIsLog(t, "bob")
	h.syncer.setMembers("bob", "dave")
	h.waitDMIsLog(t, "dave")
	appendText(t, h.path("dm/dave"), "welcome\n")
	h.waitDMIsLog(t, "dave", "me: welcome")
	h.wantSaidTo(t, "dave: welcome")
}

// TestFolderDMMemberRemoved: the file of a removed member stays as it is;
// lines added to it are not sent, and each change is warned about; the
// remaining member's file still sends. Added again, the member's file
// follows its log again without sending what was written meanwhile.
func TestFolderDMMemberRemoved(t *testing.T) {
	h := startTreeMembers(t, []string{"bob", "carol"}, nil)
	h.waitDMIsLog(t, "bob")
	appendText(t, h.path("dm/bob"), "before\n")
	h.waitDMIsLog(t, "bob", "me: before")
	h.syncer.setMembers("carol")
	h.waitLogged(t, msgMemberGone, 1)

	appendText(t, h.path("dm/bob"), "after\n")
	h.waitLogged(t, msgRemoved, 1)
	appendText(t, h.path("dm/bob"), "again\n")
	h.waitLogged(t, msgRemoved, 2)
	// Events come out of the debouncer in order: once carol's line is
	// sent, everything about bob's file before it was handled.
	appendText(t, h.path("dm/carol"), "still here\n")
	h.waitDMIsLog(t, "carol", "me: still here")
	h.wantFile(t, "dm/bob", "me: before\nafter\nagain\n")
	h.wantSaidTo(t, "bob: before", "carol: still here")

	h.syncer.setMembers("bob", "carol")
	h.waitDMIsLog(t, "bob")
	h.wantFile(t, "dm/bob~", "me: before\nafter\nagain\n")
	h.settle(t)
	if err := h.syncer.appendDM("bob", "bob: back\n"); err != nil {
		t.Fatal(err)
	}
	h.waitDMIsLog(t, "bob", "bob: back")
	h.wantSaidTo(t, "bob: before", "carol: still here")
}

// TestFolderDMStartFound: what a member's file holds when it is added.
// Lines after a copy of the log are sent, as in chat; an older copy of
// the log is just replaced; any other text (an earlier conversation under
// the name, a note written while the name was no member's) is kept aside
// as name~, or name.1~ if that is taken, and never sent.
func TestFolderDMStartFound(t *testing.T) {
	tests := []struct {
		name, log, file string
		aside           string // the file kept aside, or ""
		said            []string
	}{
		{"no file", "bob: hi\n", "", "", nil},
		{"older copy of the log", "bob: hi\nbob: there\n", "bob: hi\n", "", nil},
		{"log plus offline lines", "bob: hi\n", "bob: hi\noffline\n", "", []string{"bob: offline"}},
		{"history, log empty", "", "bob: old\nme: older\n", "bob~", nil},
		{"history, another log", "bob: new\n", "bob: old\n", "bob~", nil},
		{"history, bob~ taken", "", "bob: old\n", "bob.1~", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startTreeMembers(t, []string{"bob"}, func(dir, logPath string) {
				if tc.log != "" {
					writeFile(t, filepath.Join(filepath.Dir(logPath), "dm", "bob.log"), tc.log)
				}
				if tc.file != "" {
					writeFile(t, filepath.Join(dir, "dm", "bob"), tc.file)
				}
				if tc.aside == "bob.1~" {
					writeFile(t, filepath.Join(dir, "dm", "bob~"), "taken\n")
				}
			})
			var want []string
			for _, s := range tc.said {
				want = append(want, "me: "+strings.TrimPrefix(s, "bob: "))
			}
			h.waitDMIsLog(t, "bob", want...)
			h.wantSaidTo(t, tc.said...)
			if tc.aside != "" {
				h.wantFile(t, "dm/"+tc.aside, tc.file)
			}
			if tc.aside == "" {
				if _, err := os.Lstat(h.path("dm/bob~")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("Lstat(dm/bob~) = %v, want fs.ErrNotExist", err)
				}
			}
		})
	}
}

// TestFolderDMStrayJoins: a file written to dm/dave while dave was no
// member (here: dave's earlier conversation plus a line) is not sent when
// dave joins; it is kept aside as dave~.
func TestFolderDMStrayJoins(t *testing.T) {
	h := startTreeMembers(t, []string{"bob"}, nil)
	h.waitDMIsLog(t, "bob")
	if err := h.syncer.appendDM("dave", "dave: hi\n"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, h.path("dm/dave"), "dave: hi\nnote\n")
	h.waitLogged(t, msgStray, 1)
	h.syncer.setMembers("bob", "dave")
	h.waitDMIsLog(t, "dave", "dave: hi")
	h.wantFile(t, "dm/dave~", "dave: hi\nnote\n")
	appendText(t, h.path("dm/dave"), "hi dave\n")
	h.waitDMIsLog(t, "dave", "me: hi dave")
	h.wantSaidTo(t, "dave: hi dave")
	if n := h.logs.count(msgStray); n != 1 {
		t.Errorf("%q logged %d times, want once", msgStray, n)
	}
}

// TestFolderDMSayToGone: a member removed before the driver read the
// members again: SayTo fails, the line is warned about, stays in the
// file, and the file sends nothing more.
func TestFolderDMSayToGone(t *testing.T) {
	h := startTreeMembers(t, []string{"bob", "carol"}, nil)
	h.waitDMIsLog(t, "bob")
	h.syncer.forget("bob")
	appendText(t, h.path("dm/bob"), "one\ntwo\n")
	h.waitLogged(t, msgSayToGone, 2)
	appendText(t, h.path("dm/bob"), "three\n")
	h.waitLogged(t, msgRemoved, 1)
	appendText(t, h.path("dm/carol"), "to carol\n")
	h.waitDMIsLog(t, "carol", "me: to carol")
	h.wantFile(t, "dm/bob", "one\ntwo\nthree\n")
	h.wantSaidTo(t, "carol: to carol")
	if n := h.logs.count(msgSayToGone); n != 2 {
		t.Errorf("%q logged %d times, want 2 (one per line)", msgSayToGone, n)
	}
}

// TestFolderDMStray: a file in dm/ that is no member's is warned about
// once, never sent and never changed; neither are hidden files.
func TestFolderDMStray(t *testing.T) {
	h := startTreeMembers(t, []string{"bob"}, nil)
	h.waitDMIsLog(t, "bob")
	writeFile(t, h.path("dm/mallory"), "secret\n")
	writeFile(t, h.path("dm/.bob.swp"), "swap\n")
	h.waitLogged(t, msgStray, 1)
	appendText(t, h.path("dm/mallory"), "more\n")
	appendText(t, h.path("dm/bob"), "for bob\n") // handled after mallory's change
	h.waitDMIsLog(t, "bob", "me: for bob")
	h.wantFile(t, "dm/mallory", "secret\nmore\n")
	h.wantFile(t, "dm/.bob.swp", "swap\n")
	h.wantSaidTo(t, "bob: for bob")
	if n := h.logs.count(msgStray); n != 1 {
		t.Errorf("%q logged %d times, want once", msgStray, n)
	}
}

// TestFolderDMBadNames: names that are no single file name are skipped,
// and the others still get their files.
func TestFolderDMBadNames(t *testing.T) {
	tests := []string{"", ".", "..", "a/b", "nul\x00"}
	for _, name := range tests {
		if validDMName(name) {
			t.Errorf("validDMName(%q) = true, want false", name)
		}
	}
	for _, name := range []string{"bob", "bob smith", ".hidden", "a.b"} {
		if !validDMName(name) {
			t.Errorf("validDMName(%q) = false, want true", name)
		}
	}
	h := startTreeMembers(t, []string{"..", "bob", "a/b"}, nil)
	h.waitDMIsLog(t, "bob")
	h.waitLogged(t, "member has no dm file", 2)
	entries, err := os.ReadDir(h.path("dm"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "bob" {
		t.Errorf("dm/ holds %v, want only bob", entries)
	}
	if _, err := os.Lstat(h.path("a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lstat(a) = %v, want fs.ErrNotExist", err)
	}
}

// TestFolderDMFolderRemoved: dm/ removed or renamed by the user comes
// back with every member's file, and sends again; a renamed one is left
// alone.
func TestFolderDMFolderRemoved(t *testing.T) {
	h := startTreeMembers(t, []string{"bob"}, nil)
	h.waitDMIsLog(t, "bob")
	appendText(t, h.path("dm/bob"), "one\n")
	h.waitDMIsLog(t, "bob", "me: one")
	// The driver may be writing dm/bob (a temporary file, then a rename)
	// as it goes: rm -rf then finds a new entry and fails, as it would for
	// a user; it is run again.
	if err := testutil.WaitFor(10*time.Second, func() error { return os.RemoveAll(h.path("dm")) }); err != nil {
		t.Fatal(err)
	}
	h.waitDMIsLog(t, "bob", "me: one")
	appendText(t, h.path("dm/bob"), "two\n")
	h.waitDMIsLog(t, "bob", "me: two")

	if err := os.Rename(h.path("dm"), h.path("dm-old")); err != nil {
		t.Fatal(err)
	}
	h.waitDMIsLog(t, "bob", "me: two")
	appendText(t, h.path("dm/bob"), "three\n")
	h.waitDMIsLog(t, "bob", "me: three")
	h.wantFile(t, "dm-old/bob", "me: one\nme: two\n")
	h.wantSaidTo(t, "bob: one", "bob: two", "bob: three")
}

// TestConversationsPolled: the chat loop's timer runs only while some
// file has an orphan a writer may still append to, whichever file.
func TestConversationsPolled(t *testing.T) {
	busy := &chatFile{orphans: []*orphan{{}}}
	tests := []struct {
		name string
		chat *chatFile
		dm   map[string]*chatFile
		want bool
	}{
		{"idle", &chatFile{}, map[string]*chatFile{"bob": {}}, false},
		{"chat has an orphan", busy, map[string]*chatFile{"bob": {}}, true},
		{"a dm file has an orphan", &chatFile{}, map[string]*chatFile{"bob": {}, "carol": busy}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := &conversations{chat: tc.chat, dm: tc.dm}
			if got := cs.polled(); got != tc.want {
				t.Errorf("polled() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFolderDMLongWriter: a writer that keeps dm/bob open has each
// complete line sent while it writes, and its last line at its close,
// as for chat.
func TestFolderDMLongWriter(t *testing.T) {
	if !seesWriters {
		t.Skip("this system cannot tell when a writer closes a file")
	}
	h := startTreeMembers(t, []string{"bob"}, nil)
	h.waitDMIsLog(t, "bob")
	w, err := os.OpenFile(h.path("dm/bob"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString("line one\nhalf"); err != nil {
		t.Fatal(err)
	}
	h.waitDMIsLog(t, "bob", "me: line one")
	h.wantSaidTo(t, "bob: line one")
	if _, err := w.WriteString(" done"); err != nil { // into the replaced file
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	h.waitDMIsLog(t, "bob", "me: half done")
	h.wantSaidTo(t, "bob: line one", "bob: half done")
}
