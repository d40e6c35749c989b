package folder

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"testing"
)

// waitChatIsLog waits until Dir/chat holds exactly the engine's log, and
// the log holds every one of want.
func (h *harness) waitChatIsLog(t *testing.T, want ...string) {
	t.Helper()
	h.waitFor(t, "chat file to read as the log", func() error {
		log, err := readLog(h.syncer.logPath)
		if err != nil {
			return err
		}
		chat, err := os.ReadFile(h.path("chat"))
		if err != nil {
			return err
		}
		for _, w := range want {
			if !bytes.Contains(log, []byte(w)) {
				return fmt.Errorf("log %q lacks %q", log, w)
			}
		}
		if !bytes.Equal(chat, log) {
			return fmt.Errorf("chat = %q, log = %q", chat, log)
		}
		return nil
	})
}

// wantSaid checks that Say was called with exactly these lines, in order.
func (h *harness) wantSaid(t *testing.T, want ...string) {
	t.Helper()
	if _, _, said := h.syncer.snapshot(); !slices.Equal(said, want) {
		t.Errorf("Say calls = %q, want %q", said, want)
	}
}

// appendText appends text to path, as the shell's >> does.
func appendText(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFolderChat: >> and > on chat say the right lines once, incoming
// messages are written in, and the file always ends up as the log.
func TestFolderChat(t *testing.T) {
	h := startTree(t, func(_, logPath string) {
		writeFile(t, logPath, "alice: hello\n")
	})
	h.waitChatIsLog(t, "alice: hello")

	appendText(t, h.path("chat"), "first line\n")
	h.waitChatIsLog(t, "me: first line")
	h.wantSaid(t, "first line")

	writeFile(t, h.path("chat"), "written over\nand two\n")
	h.waitChatIsLog(t, "me: written over", "me: and two")
	h.wantSaid(t, "first line", "written over", "and two")

	if err := h.syncer.appendLog("carol: incoming\n"); err != nil {
		t.Fatal(err)
	}
	h.waitChatIsLog(t, "carol: incoming")

	// A user line and an incoming message at the same moment: each once.
	if err := h.syncer.appendLog("carol: at once\n"); err != nil {
		t.Fatal(err)
	}
	appendText(t, h.path("chat"), "mine at once\n")
	h.waitChatIsLog(t, "carol: at once", "me: mine at once")
	h.wantSaid(t, "first line", "written over", "and two", "mine at once")
	log, _ := os.ReadFile(h.syncer.logPath)
	for _, line := range []string{"carol: at once\n", "me: mine at once\n", "carol: incoming\n"} {
		if n := bytes.Count(log, []byte(line)); n != 1 {
			t.Errorf("log has %q %d times, want once: %q", line, n, log)
		}
	}
}

// TestFolderChatLongWriter: a writer that keeps chat open has each
// complete line said while it writes, including lines it writes into the
// old file after an incoming message made the driver replace it.
func TestFolderChatLongWriter(t *testing.T) {
	if !seesWriters {
		t.Skip("this system cannot tell when a writer closes a file")
	}
	h := startTree(t, nil)
	h.waitChatIsLog(t)
	w, err := os.OpenFile(h.path("chat"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString("line one\nhalf"); err != nil {
		t.Fatal(err)
	}
	h.waitChatIsLog(t, "me: line one") // the complete line went; the file was replaced
	h.wantSaid(t, "line one")
	if err := h.syncer.appendLog("carol: meanwhile\n"); err != nil {
		t.Fatal(err)
	}
	h.waitChatIsLog(t, "carol: meanwhile")
	if _, err := w.WriteString(" done\nline three\n"); err != nil { // into the replaced file
		t.Fatal(err)
	}
	h.waitChatIsLog(t, "me: half done", "me: line three")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	appendText(t, h.path("chat"), "after close\n")
	h.waitChatIsLog(t, "me: after close")
	h.wantSaid(t, "line one", "half done", "line three", "after close")
}

// TestFolderChatStart: lines added to chat while meshfs was stopped are
// said at start; an old copy of the log is not said again.
func TestFolderChatStart(t *testing.T) {
	tests := []struct {
		name, log, chat string
		said            []string
	}{
		{"old log", "a: 1\nb: 2\n", "a: 1\n", nil},
		{"log plus offline lines", "a: 1\n", "a: 1\noffline\n", []string{"offline"}},
		{"no chat file", "a: 1\n", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startTree(t, func(dir, logPath string) {
				writeFile(t, logPath, tc.log)
				if tc.chat != "" {
					writeFile(t, dir+"/chat", tc.chat)
				}
			})
			var want []string
			for _, s := range tc.said {
				want = append(want, "me: "+s)
			}
			h.waitChatIsLog(t, want...)
			h.wantSaid(t, tc.said...)
		})
	}
}
