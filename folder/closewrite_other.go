//go:build !linux

package folder

// seesCloses: without inotify nothing reports a writer's close, so a file
// a writer holds is checked again on a timer while it is held.
const seesCloses = false

// closeWatcher reports nothing here: the outbox and chat loops check held
// files on a timer instead.
type closeWatcher struct{ done chan struct{} }

func newCloseWatcher() (*closeWatcher, error) { return &closeWatcher{done: make(chan struct{})}, nil }

// Add has nothing to watch with.
func (c *closeWatcher) Add(string) error { return nil }

// Close ends run.
func (c *closeWatcher) Close() error {
	close(c.done)
	return nil
}

// run waits for Close: no close is ever reported.
func (c *closeWatcher) run(func(string)) { <-c.done }
