// Package integration holds end-to-end tests of meshfs: each test builds
// bin/meshfs once, starts several real processes on 127.0.0.1 with real FUSE
// mounts (or plain folders), drives them with plain file operations, and
// polls the other members for the effect. It imports no meshfs package.
package integration
