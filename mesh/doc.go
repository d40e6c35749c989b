// Package mesh connects the members of a small full mesh over mutually
// authenticated TLS 1.3 and carries chat messages and application bytes
// between them. It is the network layer of meshfs and also a library: a
// Node has typed events (Handler), per-peer and broadcast sends of chat and
// bytes, Connect, and a snapshot of its peers.
//
// # What it owns
//
// Everything under STATE/mesh: the node key (node.key, 0600), the member and
// CA certificates (node.crt, ca.crt), on the admin the CA key (ca.key, 0600)
// and outstanding invites (invites.json, 0600), the signed revocation list
// (revocations) and the known members (peers.json).
//
// # Security model
//
// A node's ID is the SHA-256 of its public key. The first node creates a
// mesh CA and is the admin; every member certificate is signed by it and
// every connection is checked against it and the CA-signed revocation list.
// Invites (Node.Invite) are single-use, expiring tokens that pin the CA and
// prove knowledge of a secret bound to the TLS session. Node.Remove publishes
// a new revocation list that every member enforces at once.
//
// # Wire protocol
//
// A frame is type u8 | length u32 big-endian | payload, with a per-type
// cap checked before allocation. Payloads are fixed binary layouts. Each
// connection is pre-member (joiner, JOIN only) or goes hello -> ready; CHAT,
// BYTES and PEERS are accepted only when ready. Anything else closes the
// connection.
//
// # Addresses
//
// Each side of a connection tells the other, at the end of its HELLO, the
// address it sees the other at; Node.Addresses collects them with the
// listen and interface addresses. Node.SetMapped takes the address a
// router forwards to the listen port (package portmap finds it; mesh does
// not talk to routers): it is advertised first, and a member's PEERS
// lists its own entry, so connected members learn it at once.
//
// Each member signs its dialable addresses in an address record
// (record.go) whenever they change; PEERS passes on every member's newest
// record, a receiver keeps it only if it verifies against the member's
// certificate, and the dial loop tries record addresses before hints.
//
// # Hole punching and the overlay
//
// Every PEERS entry says whether its sender is connected to the member, so
// a member knows whom each connection reaches. Two members that cannot
// dial each other are introduced by a member both reach (PUNCH_REQ,
// PUNCH). Where UDP passes they meet over QUIC: each node binds UDP at
// its TCP port, answers STUN Binding requests there, learns its outside
// UDP address from a member it dialed and tells its members (CANDIDATES,
// udp.go); given each other's, both send STUN checks and the lower ID
// dials QUIC (quic.go). Else, or when that fails, they open a TCP
// connection by simultaneous open through their NATs (punch.go). Above Config.FullMeshUpTo members the mesh is partial
// (overlay.go): each member keeps ActiveView to 2 × ActiveView random
// connections, and news of members spreads by gossip.
//
// # Anchors
//
// A member with Config.Anchor has a stable public address: its record
// says so, Node.JoinAddrs lists it for invites, and it relays a joiner's
// JOIN to the admin over its member connection (relay.go), since only the
// admin holds the CA key and the invites.
//
// # Goroutines
//
// Start starts an accept loop and a dial loop (redials with backoff and
// periodic discovery). Each connection has one reader goroutine (which
// also runs its handshake and delivers its events) and one writer
// goroutine, the only one that writes to it. Dials run in short-lived
// goroutines, at most Config.MaxDials at once. The admin serves each
// JOIN an anchor relays on a goroutine of its own, at most 8 at once.
// Start also starts an address watcher (roam.go), unless Config.Dial
// replaces TCP: on Linux it reads a netlink route socket
// and runs nothing while the network is quiet (Close closes the socket to
// stop it); elsewhere, or where netlink is refused, it compares the
// interface addresses every 10 s. On a change it closes connections bound
// to a vanished address, redials at once, and starts at most one probe
// goroutine that closes connections silent for 5 s after a PING. When it
// listens on TCP itself, Start also binds UDP and runs a STUN loop and a
// QUIC accept loop on it (quic-go adds its own transport goroutines); a
// connection we dialed starts a short STUN discovery, and a punch runs on
// its own goroutine. Close stops and waits for all of them.
//
// # Transport
//
// Members connect over TCP unless Config.Listener and Config.Dial give
// another net.Conn transport (the in-memory network of the simulation
// tests). Everything above the raw connection is the same: TLS, frames,
// the overlay. Only TCP tuning, hole punching and the address watcher,
// which are about TCP sockets and interfaces, are left out.
//
// # Imports
//
// mesh imports the standard library, three small helpers of this module
// (internal/atomicfile, internal/safetext, internal/wire), quic-go and
// pion/stun (the UDP path): never chat, sync,
// fs, folder, go-fuse or fsnotify (internal/layers enforces it).
package mesh
