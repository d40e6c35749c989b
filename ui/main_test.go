package ui

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails when a test leaves a goroutine behind: Close must stop
// the server and every event stream.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
