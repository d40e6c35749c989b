package folder

import (
	"fmt"
	"os"
	"testing"
	"time"
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

// TestFolderPeersBacksOff: while the table stays the same, each render
// waits twice as long as the one before, up to peersQuietFactor times
// PeersRefresh (100 ms here); a MembersChanged signal renders at once.
func TestFolderPeersBacksOff(t *testing.T) {
	h := startTree(t, nil)
	const base = 100 * time.Millisecond
	h.waitFor(t, "six renders", func() error {
		if n := len(h.syncer.renderTimes()); n < 6 {
			return fmt.Errorf("%d renders", n)
		}
		return nil
	})
	r := h.syncer.renderTimes()
	// r[0] wrote the file; from r[1] on each render found it unchanged.
	for i, want := range []time.Duration{base, 2 * base, 4 * base, 8 * base} {
		if gap := r[i+2].Sub(r[i+1]); gap < want {
			t.Errorf("render %d came %v after the one before, want at least %v", i+2, gap, want)
		}
	}
	h.waitFor(t, "the longest wait", func() error {
		r := h.syncer.renderTimes()
		if gap := r[len(r)-1].Sub(r[len(r)-2]); gap < peersQuietFactor*base {
			return fmt.Errorf("last gap %v", gap)
		}
		return nil
	})
	h.syncer.setTable("NAME STATE\ndave connected\n")
	signalled := time.Now()
	h.syncer.membersCh <- struct{}{}
	h.waitFor(t, "peers file after the signal", func() error {
		got, err := os.ReadFile(h.path("peers"))
		if err != nil || string(got) != "NAME STATE\ndave connected\n" {
			return fmt.Errorf("peers = %q, %v", got, err)
		}
		return nil
	})
	if took := time.Since(signalled); took > peersQuietFactor*base/2 {
		t.Errorf("the table was rendered %v after MembersChanged, want at once (the wait was %v)", took, peersQuietFactor*base)
	}
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
