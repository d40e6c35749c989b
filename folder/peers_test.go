package folder

import (
	"fmt"
	"os"
	"testing"
)

// TestFolderPeers: the peers file follows the table, and comes back if
// deleted.
func TestFolderPeers(t *testing.T) {
	h := startTree(t, nil)
	wantPeers := func(want string) {
		t.Helper()
		h.waitFor(t, "peers file", func() error {
			got, err := os.ReadFile(h.path("peers"))
			if err != nil {
				return err
			}
			if string(got) != want {
				return fmt.Errorf("peers = %q, want %q", got, want)
			}
			return nil
		})
	}
	wantPeers("NAME STATE\n")
	h.syncer.setTable("NAME STATE\ncarol connected\n")
	wantPeers("NAME STATE\ncarol connected\n")
	h.syncer.setTable("NAME STATE\ncarol offline\n")
	wantPeers("NAME STATE\ncarol offline\n")
	if err := os.Remove(h.path("peers")); err != nil {
		t.Fatal(err)
	}
	wantPeers("NAME STATE\ncarol offline\n")
}

// TestFolderPeersUnchanged: a table that did not change is not written
// again: the file keeps its inode over several refreshes.
func TestFolderPeersUnchanged(t *testing.T) {
	h := startTree(t, nil)
	h.syncer.setTable("NAME STATE\ncarol connected\n")
	var before os.FileInfo
	h.waitFor(t, "peers file", func() error {
		got, err := os.ReadFile(h.path("peers"))
		if err != nil || string(got) != "NAME STATE\ncarol connected\n" {
			return fmt.Errorf("peers = %q, %v", got, err)
		}
		before, err = os.Stat(h.path("peers"))
		return err
	})
	reads := h.syncer.reads()
	h.waitFor(t, "three more refreshes", func() error {
		if n := h.syncer.reads(); n < reads+3 {
			return fmt.Errorf("%d refreshes", n-reads)
		}
		return nil
	})
	after, err := os.Stat(h.path("peers"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("peers file rewritten while its table did not change")
	}
}
