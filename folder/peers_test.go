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
