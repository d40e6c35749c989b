//go:build !failpoints

package sync

// failLie is off in every build but the one the tests make on purpose
// (go build -tags failpoints; see failpoint_on.go).
const failLie = false

// dumpWire does nothing outside the test build (see failpoint_on.go).
func dumpWire([]byte) {}
