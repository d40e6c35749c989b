package sync

import (
	"testing"

	"github.com/meshfs/meshfs/mesh"
)

// TestChatJoinedLeft: the chat says "left" and "joined" for a member that
// left and came back, and says nothing for a connection the partial mesh
// closed (or another replaced) while the member stayed.
func TestChatJoinedLeft(t *testing.T) {
	s := newPeerSet()
	bob := mesh.PeerID{1}
	steps := []struct {
		what string
		news bool
		do   func() bool
	}{
		{"bob connects", true, func() bool { return s.cameBack(bob) }},
		{"the overlay closes bob's connection", false, func() bool { return s.wentAway(bob, false) }},
		{"bob connects again", false, func() bool { return s.cameBack(bob) }},
		{"bob leaves", true, func() bool { return s.wentAway(bob, true) }},
		{"bob comes back", true, func() bool { return s.cameBack(bob) }},
	}
	for _, st := range steps {
		if got := st.do(); got != st.news {
			t.Errorf("%s: news = %v, want %v", st.what, got, st.news)
		}
	}
}
