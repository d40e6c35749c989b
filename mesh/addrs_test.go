package mesh

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meshfs/meshfs/internal/testutil"
)

// TestAddressesObservedAndMapped: each side learns from HELLO the address
// the other sees it at, and a mapped address set after the handshake
// reaches the connected member as the first address it would dial.
func TestAddressesObservedAndMapped(t *testing.T) {
	alice := startNode(t, testConfig(t, "alice"))
	bob := startNode(t, joinConfig(t, alice, "bob"))
	fullMesh(t, alice, bob)

	a := alice.Addresses()
	if !slices.Contains(a.Observed, alice.Addr().String()) {
		t.Errorf("alice.Addresses().Observed = %v, want it to hold %s (bob dialed it)", a.Observed, alice.Addr())
	}
	if got := a.Dialable(); len(got) == 0 || got[0] != alice.Addr().String() {
		t.Errorf("alice.Addresses().Dialable() = %v, want %s first", got, alice.Addr())
	}
	if b := bob.Addresses(); len(b.Observed) != 1 || b.Mapped != "" {
		t.Errorf("bob.Addresses() = %+v, want one observed address and no mapping", b)
	}

	const mapped = "192.0.2.7:4100"
	if err := bob.SetMapped(mapped); err != nil {
		t.Fatalf("SetMapped(%s) = %v", mapped, err)
	}
	if got := bob.Addresses(); got.Mapped != mapped || got.Advertised[0] != mapped {
		t.Errorf("bob.Addresses() = %+v, want %s mapped and advertised first", got, mapped)
	}
	err := testutil.WaitFor(5*time.Second, func() error {
		alice.mu.Lock()
		defer alice.mu.Unlock()
		if m := alice.roster[bob.ID()]; m == nil || len(m.Addrs) == 0 || m.Addrs[0] != mapped {
			return fmt.Errorf("alice has bob at %v, want %s first", m.Addrs, mapped)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.SetMapped("no port"); err == nil {
		t.Errorf("SetMapped(%q) = nil, want an error", "no port")
	}
}

func TestDialable(t *testing.T) {
	tests := []struct {
		name string
		a    Addresses
		want []string
	}{
		{"mapped, then observed with the listen port, then local",
			Addresses{Listen: "[::]:4100", Mapped: "198.51.100.1:4100",
				Observed:   []string{"198.51.100.1:55000", "203.0.113.9:4100"},
				Advertised: []string{"198.51.100.1:4100", "[::]:4100"}, Local: []string{"10.0.0.2:4100"}},
			[]string{"198.51.100.1:4100", "203.0.113.9:4100", "10.0.0.2:4100"}},
		{"listening on one host", Addresses{Listen: "10.0.0.2:4100", Advertised: []string{"10.0.0.2:4100"},
			Local: []string{"10.0.0.2:4100"}}, []string{"10.0.0.2:4100"}},
		{"nothing dialable", Addresses{Listen: "[::]:4100", Advertised: []string{"[::]:4100"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Dialable(); !slices.Equal(got, tc.want) {
				t.Errorf("Dialable(%+v) = %v, want %v", tc.a, got, tc.want)
			}
		})
	}
}
