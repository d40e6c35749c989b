//go:build race

package mesh

// raceEnabled: the test binary is race-built, which makes every handshake
// several times slower.
const raceEnabled = true
