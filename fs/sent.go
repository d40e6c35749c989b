//go:build linux

package fs

// newSent returns the top node of sent/, backed by dir: a keep subtree (read,
// delete, rename within) with nothing hidden. sync moves outbox files here
// once every member verified them.
func newSent(dir string) (*keepNode, error) {
	return newKeep(dir, saltSent, "")
}
