//go:build linux

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// TestChatFile: the chat file as people use it, on three real processes.
// Each line of a write is one message, in order, and a burst loses none;
// tail -f follows the file; a delivered file is announced in it; and peers
// shows each member's round-trip time.
func TestChatFile(t *testing.T) {
	longTest(t)
	c := newCluster(t)
	m := c.fullMesh("alice", "bob", "carol")
	alice, bob, carol := m[0], m[1], m[2]

	t.Run("two lines in one write are two messages in order", func(t *testing.T) {
		say(t, alice, "first line\nsecond line\n")
		waitContains(t, bob.path("chat"), "alice: second line")
		got := chatMessages(t, bob, "alice: ")
		if want := []string{"alice: first line", "alice: second line"}; !slices.Equal(got, want) {
			t.Errorf("bob's chat shows %q, want %q", got, want)
		}
	})

	t.Run("a burst of 300 appended lines arrives whole and in order", func(t *testing.T) {
		var burst, want []string
		for i := 1; i <= 300; i++ {
			burst = append(burst, fmt.Sprintf("burst %d of 300", i))
			want = append(want, "alice: "+burst[i-1])
		}
		f, err := os.OpenFile(alice.path("chat"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(strings.Join(burst, "\n") + "\n"); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		waitContains(t, carol.path("chat"), "alice: burst 300 of 300")
		if got := chatMessages(t, carol, "alice: burst "); !slices.Equal(got, want) {
			t.Errorf("carol got %d burst lines, want 300 in order; first %q", len(got), got[:min(3, len(got))])
		}
	})

	t.Run("tail -f follows the chat", func(t *testing.T) {
		tail := startTail(t, bob.path("chat"))
		waitOutput(t, tail, "alice: second line") // tail has read what was there
		line := fmt.Sprintf("live line %d", time.Now().UnixNano())
		say(t, carol, line+"\n")
		waitOutput(t, tail, "carol: "+line)
	})

	t.Run("a delivered file is announced", func(t *testing.T) {
		if err := os.WriteFile(alice.path("outbox", "note.txt"), []byte("data\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		waitContains(t, bob.path("chat"), "alice sent note.txt")
	})

	t.Run("peers shows round-trip times", func(t *testing.T) {
		rtt := regexp.MustCompile(`\s[0-9.]+(µs|us|ms|s)\s`)
		err := testutil.WaitFor(30*time.Second, func() error {
			for _, o := range []string{"bob", "carol"} {
				if l := alice.peerLine(o); !rtt.MatchString(l) {
					return fmt.Errorf("alice's peers line for %s shows no round-trip time: %q", o, l)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// say writes text into n's chat, as echo > chat does.
func say(t *testing.T, n *node, text string) {
	t.Helper()
	if err := os.WriteFile(n.path("chat"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// chatMessages returns the messages of n's chat log that start with
// prefix ("alice: "), without their time stamps, in log order.
func chatMessages(t *testing.T, n *node, prefix string) []string {
	t.Helper()
	data, err := os.ReadFile(n.path("chat"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if _, msg, ok := strings.Cut(line, "] "); ok && strings.HasPrefix(msg, prefix) {
			out = append(out, msg)
		}
	}
	return out
}

// startTail runs tail -f on path until the test ends; its output is
// collected for waitOutput.
func startTail(t *testing.T, path string) *lockedBuffer {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command("tail", "-n", "+1", "-f", "-s", "0.2", path)
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return out
}

// waitOutput polls until out holds want.
func waitOutput(t *testing.T, out *lockedBuffer, want string) {
	t.Helper()
	err := testutil.WaitFor(20*time.Second, func() error {
		if !strings.Contains(out.String(), want) {
			return fmt.Errorf("output lacks %q", want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
