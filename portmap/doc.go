// Package portmap asks the home router to forward a TCP port to this
// machine, so members outside the router's NAT can dial in. It speaks
// NAT-PMP (RFC 6886, to the default gateway; PCP-capable routers answer
// it too) and UPnP IGD (found by SSDP), through github.com/jackpal/go-nat-pmp
// and github.com/huin/goupnp.
//
// # What it owns
//
// One mapping of Config.Port at one gateway: it asks for the same external
// port, renews the lease at half its life, and deletes the mapping on Close.
//
// # Goroutines
//
// Start runs one goroutine, owned by the Mapper: Close stops it and waits
// for it. Every network exchange has a deadline (Config.Timeout).
//
// # Imports
//
// The standard library and the two protocol libraries only; it knows
// nothing of meshes. cmd/meshfs passes the mapped address to mesh.
package portmap
