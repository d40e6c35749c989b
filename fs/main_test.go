package fs

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind, such as
// a serve loop of a mount that was never stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
