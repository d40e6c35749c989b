package folder

import (
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// event is one file-system change: the path and what happened to it.
// The debouncer merges the ops of events for the same path.
type event struct {
	Path string
	Op   fsnotify.Op
}

// clock is the time source of the debouncer. Production uses
// realClock; tests run under testing/synctest, where the real clock
// is already fake, or pass their own.
type clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// realClock is the time package.
type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// pendingPath is a path waiting for quiet: its merged ops and when it
// may be emitted.
type pendingPath struct {
	op       fsnotify.Op
	deadline time.Time
}

// debounce emits one event per path once delay has passed without
// another event for that path; the emitted Op is the union of the ops seen
// meanwhile. Events emit in deadline order. It always keeps reading in, so
// a slow reader of out never blocks the producer. When in is closed it
// closes out and returns, dropping what is still pending.
//
// The loop state: pending paths (still quiet-waiting) and ready events
// (due, not yet taken by the reader of out).
func debounce(in <-chan event, out chan<- event, delay time.Duration, clock clock) {
	defer close(out)
	pending := make(map[string]*pendingPath)
	var ready []event
	for {
		var send chan<- event
		var head event
		if len(ready) > 0 {
			send, head = out, ready[0]
		}
		var fire <-chan time.Time
		if next, ok := earliest(pending); ok {
			fire = clock.After(next.Sub(clock.Now()))
		}
		select {
		case ev, ok := <-in:
			if !ok {
				return
			}
			p := pending[ev.Path]
			if p == nil {
				p = &pendingPath{}
				pending[ev.Path] = p
			}
			p.op |= ev.Op
			p.deadline = clock.Now().Add(delay)
		case <-fire:
			ready = append(ready, due(pending, clock.Now())...)
		case send <- head:
			ready = ready[1:]
		}
	}
}

// earliest returns the first deadline among pending paths.
func earliest(pending map[string]*pendingPath) (time.Time, bool) {
	var first time.Time
	for _, p := range pending {
		if first.IsZero() || p.deadline.Before(first) {
			first = p.deadline
		}
	}
	return first, !first.IsZero()
}

// due removes the paths whose deadline has passed from pending and
// returns them as events, in deadline order (then by path, for stable
// output when deadlines tie).
func due(pending map[string]*pendingPath, now time.Time) []event {
	type due struct {
		ev       event
		deadline time.Time
	}
	var ds []due
	for path, p := range pending {
		if !p.deadline.After(now) {
			ds = append(ds, due{event{Path: path, Op: p.op}, p.deadline})
			delete(pending, path)
		}
	}
	slices.SortFunc(ds, func(a, b due) int {
		if c := a.deadline.Compare(b.deadline); c != 0 {
			return c
		}
		return strings.Compare(a.ev.Path, b.ev.Path)
	})
	evs := make([]event, len(ds))
	for i, d := range ds {
		evs[i] = d.ev
	}
	return evs
}
