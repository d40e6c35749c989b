package mesh

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIdentityFilesAndReload(t *testing.T) {
	cfg := testConfig(t, "al/ice\x1b[31m")
	a := newOffline(t, cfg)
	if a.Name() != "al_ice" {
		t.Fatalf("Name() = %q, want sanitised %q", a.Name(), "al_ice")
	}
	if len(a.MeshID()) != 8 {
		t.Fatalf("MeshID() = %q, want 8 characters", a.MeshID())
	}
	if _, err := a.Invite(time.Hour, 2); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cfg.StateDir, "mesh")
	modes := map[string]os.FileMode{"": 0o700, fileNodeKey: 0o600, fileCAKey: 0o600, fileInvites: 0o600}
	for name, want := range modes {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("mode of %q = %v, want %v", name, got, want)
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, fileInvites))
	if strings.Contains(string(data), "msh1-") {
		t.Errorf("invites.json holds a token")
	}
	a.Close()
	cfg.Name = "renamed" // the certificate keeps the name it was issued with
	again := newOffline(t, cfg)
	if again.ID() != a.ID() || again.MeshID() != a.MeshID() || again.Created() || !again.IsAdmin() || again.Name() != "al_ice" {
		t.Fatalf("reload: id %v mesh %q created %v admin %v name %q", again.ID() == a.ID(), again.MeshID(),
			again.Created(), again.IsAdmin(), again.Name())
	}
}

func TestDefaultName(t *testing.T) {
	cfg := testConfig(t, "..")
	n := newOffline(t, cfg)
	if want := "node-" + n.ID().Short(); n.Name() != want {
		t.Fatalf("Name() = %q, want %q", n.Name(), want)
	}
}

func TestParseToken(t *testing.T) {
	tok := &token{caFP: [16]byte{1}, id: [4]byte{2}, secret: [16]byte{3}}
	s := tok.String()
	if len(s) != len(tokenPrefix)+60 {
		t.Fatalf("token length %d, want %d", len(s), len(tokenPrefix)+60)
	}
	if _, err := parseToken(strings.ToUpper(s[:5]) + s[5:]); err == nil {
		t.Fatalf("parseToken accepted an upper-case prefix")
	}
	if back, err := parseToken(" " + s + "\n"); err != nil || *back != *tok {
		t.Fatalf("parseToken(String()) = %v, %v", back, err)
	}
	for _, bad := range []string{"", "msh1-", "msh2-" + s[5:], s[:len(s)-1], s + "aa", "msh1-!!!!"} {
		if _, err := parseToken(bad); !errors.Is(err, ErrBadInvite) || strings.Contains(err.Error(), s[5:]) {
			t.Errorf("parseToken(%q) = %v, want ErrBadInvite without echoing the token", bad, err)
		}
	}
}
