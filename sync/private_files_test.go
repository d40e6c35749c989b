package sync

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// putTo writes data to rel in fn's to/<name>/ and reports it closed.
func (fn *fakeNode) putTo(name, rel string, data []byte) {
	fn.net.t.Helper()
	p := filepath.Join(fn.root, "to", name, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		fn.net.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o640); err != nil {
		fn.net.t.Fatal(err)
	}
	fn.engine().ToClosed(name, rel)
}

// carried lists the boxes fn carries for others.
func carried(t *testing.T, fn *fakeNode) []string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(fn.root, "inbox", partialsName, carriedName, "*.box"))
	return names
}

// TestPrivateFile: alice puts a file in to/bob/; bob gets it under
// inbox/alice/, marked private; carol, connected to both, carries the box
// but has nothing of it in her inbox and no byte of it in the clear; alice
// moves it to sent/to/bob/ once bob has it.
func TestPrivateFile(t *testing.T) {
	n, a, b, c := trio(t)
	n.connect(a, b)
	n.connect(b, c)
	n.connect(a, c)
	data := append([]byte("marker-91c2 "), randBytes(3, 3*minBlockSize+5)...)
	a.putTo("bob", "deals/contract.pdf", data)
	b.waitFile("inbox/alice/deals/contract.pdf", data)
	if states, queued := a.engine().ToDelivery("bob", "deals/contract.pdf"); queued && (len(states) != 1 || states["bob"] == "") {
		t.Errorf("ToDelivery = %v, want bob's state alone: carol only carries it", states)
	}
	a.waitFile("sent/to/bob/deals/contract.pdf", data)
	if fi, err := os.Stat(filepath.Join(b.root, "inbox", "alice", "deals", "contract.pdf")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("bob's copy: %v, %v; want mode 0640", fi, err)
	}
	if p := holdsMarker(t, "marker-91c2", c.root, c.st); p != "" {
		t.Errorf("carol holds the private file in the clear in %s", p)
	}
	if exists(filepath.Join(c.root, "inbox", "alice")) {
		t.Error("carol's inbox/alice/ exists: she shows something of a file that is not hers")
	}
	if sent := n.chunkBytes.Load(); sent > int64(len(data))+minBlockSize { // the box: the file, a header and age's overhead
		t.Errorf("%d bytes of blocks sent for a %d-byte file: bob took the box at once, nobody needed to carry it", sent, len(data))
	}
	if p := holdsMarker(t, "marker-91c2", filepath.Join(b.root, "inbox", partialsName)); p != "" {
		t.Errorf("bob keeps a copy beside the placed one: %s", p)
	}
}

// TestPrivateFileThroughCarrier: bob is away when alice puts a file for
// him; carol takes the box; alice leaves; bob, back, gets the file from
// carol, who then drops the box; alice, back, moves it to sent/ on bob's
// receipt without sending it again.
func TestPrivateFileThroughCarrier(t *testing.T) {
	n, a, b, c := trio(t)
	n.connect(a, c)
	data := append([]byte("marker-3b7e "), randBytes(4, 2*minBlockSize)...)
	a.putTo("bob", "for-bob.bin", data)
	waitFor(t, func() bool { return len(carried(t, c)) == 1 })
	n.cut(a, c)
	n.connect(b, c)
	b.waitFile("inbox/alice/for-bob.bin", data)
	waitFor(t, func() bool { return len(carried(t, c)) == 0 })
	if p := holdsMarker(t, "marker-3b7e", c.root, c.st); p != "" {
		t.Errorf("carol holds the private file in the clear in %s", p)
	}
	before := n.chunkBytes.Load()
	n.connect(a, c)
	a.waitFile("sent/to/bob/for-bob.bin", data)
	if sent := n.chunkBytes.Load() - before; sent != 0 {
		t.Errorf("%d bytes of blocks sent after alice came back; bob had the file", sent)
	}
}

// TestPrivateFileToNobody: a file in the folder of a name that is no
// member's stays where it is, and says why.
func TestPrivateFileToNobody(t *testing.T) {
	_, a, _ := pair(t, nil)
	a.putTo("nobody", "x.txt", []byte("hello"))
	waitFor(t, func() bool { return a.engine().ToUnsentReason("nobody", "x.txt") != "" })
	if got, err := os.ReadFile(filepath.Join(a.root, "to", "nobody", "x.txt")); err != nil || !bytes.Equal(got, []byte("hello")) {
		t.Errorf("the file for nobody: %q, %v; want it kept", got, err)
	}
}
