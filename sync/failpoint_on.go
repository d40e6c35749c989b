//go:build failpoints

package sync

import "os"

// failLie makes this member alter every chat record of another author that
// it passes on, keeping the signature, so the tests can watch the others
// find it out (integration.TestRelayLyingMember). It exists only in a
// binary built with -tags failpoints, and even there only when the
// environment says MESHFS_FAILPOINT=lie: 'make build' never compiles it.
var failLie = os.Getenv("MESHFS_FAILPOINT") == "lie"
