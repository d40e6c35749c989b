//go:build failpoints

package sync

import (
	"os"
	"sync"
)

// failLie makes this member alter every chat record of another author that
// it passes on, keeping the signature, so the tests can watch the others
// find it out (integration.TestRelayLyingMember). It exists only in a
// binary built with -tags failpoints, and even there only when the
// environment says MESHFS_FAILPOINT=lie: 'make build' never compiles it.
var failLie = os.Getenv("MESHFS_FAILPOINT") == "lie"

// wireDump is the file MESHFS_WIRE_DUMP names, opened at the first message.
var wireDump struct {
	once sync.Once
	mu   sync.Mutex
	f    *os.File
}

// dumpWire appends every sync message this member receives, as the mesh
// hands it over after TLS, to the file MESHFS_WIRE_DUMP names, so a test
// can look there for what must never cross the wire in the clear
// (integration.TestPrivateThroughCarrier). It exists only in a binary
// built with -tags failpoints.
func dumpWire(data []byte) {
	wireDump.once.Do(func() {
		if p := os.Getenv("MESHFS_WIRE_DUMP"); p != "" {
			wireDump.f, _ = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		}
	})
	if wireDump.f == nil {
		return
	}
	wireDump.mu.Lock()
	defer wireDump.mu.Unlock()
	wireDump.f.Write(data)
}
