package sync

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/meshfs/meshfs/mesh"
	"github.com/meshfs/meshfs/record"
)

// row58Records: mallory passes on chat records that are forged (signed
// with her key in carol's name), altered after signing (text, or a number
// that reorders or replays the line under another), replayed, truncated,
// from a removed member, or from nobody bob knows. bob shows none of
// them, counts each that does not verify against mallory, and still takes
// her own honest line and carol's true one.
func row58Records(t *testing.T, v *syncVictim) {
	carol := v.n.addNode("carol", nil)
	carol.engine().Close()
	carol.eng = nil
	dave := v.n.addNode("dave", nil)
	dave.engine().Close()
	dave.eng = nil
	v.n.mu.Lock()
	v.n.revoked = map[mesh.PeerID]bool{dave.id: true}
	v.n.mu.Unlock()
	before := peerStatus(v.b, v.ev.id).BadData

	wrongKey := carol.line(1, "forged: carol never said this")
	wrongKey.Sign(v.ev.key)
	altered := carol.line(1, "true line")
	altered.Text = "forged: altered after signing"
	renumbered := carol.line(1, "forged: said once, replayed as number 2")
	renumbered.Seq = 2
	revoked := dave.line(1, "forged: from a removed member")
	stranger := v.n.addStranger(t, "forged: from no member")
	for _, c := range []record.Chat{wrongKey, altered, renumbered, revoked, stranger} {
		v.ev.sendTo(v.b, &recordsMsg{Records: []record.Chat{c}})
	}
	truncated := (&recordsMsg{Records: []record.Chat{carol.line(1, "forged: cut short")}}).encode()
	v.ev.SendBytes(t.Context(), v.b.id, truncated[:len(truncated)-10])

	honest := carol.line(1, "carol's true line")
	v.ev.sendTo(v.b, &recordsMsg{Records: []record.Chat{honest, honest}}) // the replay is a duplicate
	v.ev.sendTo(v.b, &recordsMsg{Records: []record.Chat{v.ev.line(1, "mallory's own line")}})
	waitChatHas(t, v.b, "carol: carol's true line", "mallory: mallory's own line")
	waitFor(t, func() bool { return peerStatus(v.b, v.ev.id).BadData-before == 3 })
	log, err := os.ReadFile(v.b.engine().ChatLogPath())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(log, []byte("forged")) || bytes.Count(log, []byte("carol's true line")) != 1 {
		t.Errorf("bob's chat shows a forged or repeated line:\n%s", log)
	}
	v.check(t)
}

// addStranger makes a record signed by a key no member of the net holds.
func (n *fakeNet) addStranger(t *testing.T, text string) record.Chat {
	fn := n.addNode(fmt.Sprintf("stranger-%d", len(text)), nil)
	fn.engine().Close()
	fn.eng = nil
	c := fn.line(1, text)
	n.mu.Lock()
	delete(n.nodes, fn.id)
	n.mu.Unlock()
	return c
}

// waitChatHas polls until fn's chat shows each of lines.
func waitChatHas(t *testing.T, fn *fakeNode, lines ...string) {
	t.Helper()
	waitFor(t, func() bool {
		got := strings.Join(chatLines(t, fn), "\n") + "\n"
		for _, l := range lines {
			if !strings.Contains(got, l+"\n") {
				return false
			}
		}
		return true
	})
}
