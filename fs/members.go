//go:build linux

package fs

import (
	"log/slog"
	"strings"
	"sync"
)

// maxRefusedNames bounds the bad names a folder of members remembers
// having logged; past it, further bad names are skipped without a log
// line.
const maxRefusedNames = 64

// memberNames gives dm/ and to/ the current members, one entry each: the
// Syncer's conversations, asked anew at each call, without the names that
// cannot be an entry.
type memberNames struct {
	// immutable after newMemberNames
	syncer Syncer
	log    *slog.Logger

	mu      sync.Mutex
	refused map[string]bool // guarded by mu: bad names already logged
}

func newMemberNames(syncer Syncer, log *slog.Logger) *memberNames {
	return &memberNames{syncer: syncer, log: log, refused: make(map[string]bool)}
}

// conversations returns Syncer.Conversations without the names that cannot
// be a directory entry, or that repeat an earlier one. The engine makes
// names safe; this only keeps a bug there from making a bad entry here.
func (m *memberNames) conversations() []Conversation {
	all := m.syncer.Conversations()
	out := make([]Conversation, 0, len(all))
	seen := make(map[string]bool, len(all))
	for _, c := range all {
		why := badName(c.Name)
		if why == "" && seen[c.Name] {
			why = "repeated"
		}
		if why != "" {
			m.refuse(c.Name, why)
			continue
		}
		seen[c.Name] = true
		out = append(out, c)
	}
	return out
}

// find returns the current conversation named name.
func (m *memberNames) find(name string) (Conversation, bool) {
	for _, c := range m.conversations() {
		if c.Name == name {
			return c, true
		}
	}
	return Conversation{}, false
}

// badName says why name cannot be an entry of dm/ or to/, or "".
func badName(name string) string {
	switch {
	case name == "", name == ".", name == "..":
		return "empty or a dot name"
	case strings.ContainsAny(name, "/\x00"):
		return "contains / or NUL"
	case len(name) > 255:
		return "longer than NAME_MAX"
	}
	return ""
}

// refuse logs a skipped name, once per name.
func (m *memberNames) refuse(name, why string) {
	m.mu.Lock()
	seen := m.refused[name] || len(m.refused) >= maxRefusedNames
	if !seen {
		m.refused[name] = true
	}
	m.mu.Unlock()
	if !seen {
		m.log.Warn("conversation name refused", "name", name, "why", why,
			"fix", "report a bug: the engine gave fs a name unfit for a file")
	}
}
