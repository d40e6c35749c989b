package fs

// Syncer is what FUSE operations call into (implemented by the sync engine,
// *meshsync.Engine). Every method is called from inside a FUSE callback, so
// it must not block on the network: it records or enqueues and returns
// (Say and SayTo alone wait, for their line to be on the local disk).
type Syncer interface {
	// OutboxClosed reports that rel ('/'-separated, relative to outbox/)
	// is complete:
	//   - a regular file whose last writable handle was released, under
	//     every name it still has (a hard link made while it was open is
	//     reported with the first);
	//   - a regular file or symbolic link renamed or hard-linked to rel
	//     (a file still open for writing waits for its release);
	//   - in a folder renamed to rel, rel included: each regular file,
	//     each symbolic link and each folder without entries;
	//   - a regular file whose size, mode or mtime changed (truncate,
	//     chmod, utime) while nobody had it open for writing;
	//   - a symbolic link or folder just made.
	// For a folder, the Syncer walks it itself.
	OutboxClosed(rel string)
	// OutboxRemoved reports that rel (a file or a folder) no longer exists
	// under outbox/: it was unlinked, removed, or renamed away (a rename
	// within outbox/ reports OutboxRemoved(old) then OutboxClosed(new)).
	OutboxRemoved(rel string)
	// Say sends one chat line (without its "\n") from the local user and
	// returns once the line is durable here; it is on its way to the
	// members meanwhile. An error refuses the line; the writer of the chat
	// file sees it as an errno (see sayErrno in errno.go).
	Say(text string) error
	// Conversations lists the members this node may talk to privately, one
	// file under dm/ and one folder under to/ each: every current member
	// but this node, sorted by Name. It reads memory only.
	Conversations() []Conversation
	// SayTo sends one private line (without its "\n") to the member whose
	// Conversation.Name is name, end-to-end encrypted to that member, and
	// returns once the line is durable here, like Say. A name that is not a
	// current member's fails with an error whose Errno() is ENOENT; other
	// errors map like Say's.
	SayTo(name, text string) error
	// PeersTable renders the current contents of the peers file.
	PeersTable() []byte
	// Delivery returns the delivery state of outbox file rel for each
	// member, keyed by a distinct member name (never "state" or
	// "incomplete"), and whether rel is queued at all. A state is
	// "queued", "offered", "sending 43%", "verifying", DeliveryVerified
	// or "refused: <reason>". It reads memory only.
	Delivery(rel string) (members map[string]string, queued bool)
	// UnsentReason says why outbox file rel is not sent ("too big: 2.0 TiB,
	// limit 1.0 TiB (--max-file-size)"), or "". It reads memory only.
	UnsentReason(rel string) string
	// ToClosed is OutboxClosed for the folder to/<name>/ of the member
	// whose Conversation.Name is name: rel is relative to that folder and
	// the same cases are reported. What is put there goes to that member
	// only, sealed to it.
	ToClosed(name, rel string)
	// ToRemoved is OutboxRemoved for to/<name>/.
	ToRemoved(name, rel string)
	// ToDelivery is Delivery for to/<name>/rel: its one member's state,
	// keyed by that member's name, and whether rel is queued at all.
	ToDelivery(name, rel string) (members map[string]string, queued bool)
	// ToUnsentReason is UnsentReason for to/<name>/rel.
	ToUnsentReason(name, rel string) string
}

// Conversation is one file under dm/: a private conversation with one
// member. Its Name also names the member's folder under to/.
type Conversation struct {
	Name string // the file name under dm/ (the member's display name, unique, safe as a file name)
	Log  string // the rendered conversation: an append-only file, which may not exist yet
}

// DeliveryVerified is the state of a member that has verified the file
// (see Syncer.Delivery); the outbox counts these for user.meshfs.state.
const DeliveryVerified = "verified"
