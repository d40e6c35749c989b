//go:build linux && race

package integration

// raceEnabled: the test binary is race-built, so the meshfs binary is too.
const raceEnabled = true
