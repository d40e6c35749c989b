// Package record holds author-signed records and version vectors.
//
// A chat line becomes a Chat record signed by its author's member key
// (Ed25519) with a per-author sequence number, so a member can check a
// record it got second-hand from another member: nobody but the author can
// make, alter, renumber or replay one of its records. Members compare what
// they hold with a Vector (author -> highest contiguous sequence number
// held) and send each other what the other lacks (Vector.Lacks).
//
// # What it owns
//
// The signed bytes of a chat record, its wire form and the wire form of a
// vector (docs/records.md has them as tables), and the structural checks a
// record must pass before anyone shows or stores it.
//
// # What it must not do
//
// It is pure: no goroutines, no disk, no network. It imports only the
// standard library, mesh (for PeerID), internal/wire and internal/safetext.
package record
