// Package seal encrypts a message or a file to one or more members, with
// the keys the mesh CA certified for them, so that members who relay it
// learn nothing of it but its size and timing.
//
// # Why age
//
// A box is an age file (filippo.io/age, format age-encryption.org/v1):
// a random file key wrapped once per recipient by X25519, HKDF-SHA-256 and
// ChaCha20-Poly1305, a header MAC under that key, then the payload in
// authenticated chunks of 64 KiB with the last one marked, so a box cannot
// be cut short or reordered unnoticed. It is a reviewed, specified
// construction with its own tests and test vectors; seal adds no
// cryptography of its own, only the choice of keys.
//
// # Keys
//
// A member has one key pair, the Ed25519 key in its member certificate.
// seal derives the X25519 keys from it with the standard birational map:
// the public key is the same curve point in Montgomery form, and the
// private scalar is the clamped first half of SHA-512(seed), the scalar
// Ed25519 itself signs with (libsodium's crypto_sign_ed25519_pk_to_curve25519
// and crypto_sign_ed25519_sk_to_curve25519). Deriving instead of issuing a
// second key means there is one key to certify and look up
// (mesh.Node.MemberKey), and removal applies to both uses at once: a
// removed member's key is refused by MemberKey, so nothing new is sealed
// to it. Boxes it already received stay readable to it.
//
// # What a relay sees
//
// The age header: its version line, one "X25519" stanza per recipient
// holding an ephemeral public key and the wrapped file key, and the MAC.
// A stanza names no recipient, and is the same size for every member, so
// a relay learns how many recipients a box has but not who they are,
// unless it is one of them. It also sees the total size, from which the
// message's size follows exactly (the header, a 16-byte nonce and 16
// bytes per 64 KiB chunk), and when the box passes.
//
// # One key for signing and for encryption
//
// Using one key pair for two purposes is a known caveat: a weakness in one
// use could in principle help against the other. Here the two uses are
// separated: Ed25519 uses the scalar only inside its own SHA-512-based
// signatures (and meshfs signs only bytes that begin with a domain
// string), while X25519 uses it only for Diffie-Hellman, whose output age
// passes through HKDF with its own label. No known attack relates the two,
// and the same map is used by libsodium and by age itself for ssh-ed25519
// keys. seal uses age's native
// X25519 stanzas, not its ssh-ed25519 ones, because those carry a tag of
// the recipient's key that would tell a relay who a box is for.
//
// # What it does not do
//
// A box does not say who sealed it: any member, or anyone holding a
// member's public key, can seal a box to that member. Who wrote a message
// must come from a signature by its author (package record) over the
// message, inside the box. Nor does a box hide that it is an age file, how
// many recipients it has, or its size.
//
// # Limits
//
// A member can open a box only if its own key was among the recipients;
// a sender that wants to read its box later seals to itself too. Open
// reads a header of at most 2 MiB and 1024 stanzas (age's limits) before
// it knows whether the box is its own; OpenBytes bounds what it allocates
// for the message by its caller's limit.
//
// # What it owns and imports
//
// Only the key derivation and the error mapping; it starts no goroutines
// and touches no disk or network. It imports the standard library,
// filippo.io/age and filippo.io/edwards25519, and no meshfs package:
// callers pass the recipients' keys from mesh.Node.MemberKey, and the
// member's own private key (mesh.Node hands out only a crypto.Signer
// today).
package seal
