package folder

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchTimed is an event at an offset from the start of a test.
type watchTimed struct {
	At   time.Duration
	Path string
	Op   fsnotify.Op
}

func TestWatchDebounce(t *testing.T) {
	const delay = 100 * time.Millisecond
	ms := time.Millisecond
	tests := []struct {
		name string
		in   []watchTimed
		want []watchTimed
	}{
		{
			name: "one event waits for the delay",
			in:   []watchTimed{{0, "a", fsnotify.Create}},
			want: []watchTimed{{100 * ms, "a", fsnotify.Create}},
		},
		{
			name: "a burst is one event with merged ops, after the last",
			in: []watchTimed{
				{0, "a", fsnotify.Create}, {50 * ms, "a", fsnotify.Write}, {120 * ms, "a", fsnotify.Write},
			},
			want: []watchTimed{{220 * ms, "a", fsnotify.Create | fsnotify.Write}},
		},
		{
			name: "paths are debounced separately",
			in: []watchTimed{
				{0, "a", fsnotify.Write}, {30 * ms, "b", fsnotify.Write}, {60 * ms, "a", fsnotify.Write},
			},
			want: []watchTimed{{130 * ms, "b", fsnotify.Write}, {160 * ms, "a", fsnotify.Write}},
		},
		{
			name: "an event after emission emits again",
			in:   []watchTimed{{0, "a", fsnotify.Write}, {300 * ms, "a", fsnotify.Remove}},
			want: []watchTimed{{100 * ms, "a", fsnotify.Write}, {400 * ms, "a", fsnotify.Remove}},
		},
		{
			name: "equal deadlines emit in path order",
			in:   []watchTimed{{0, "b", fsnotify.Write}, {0, "a", fsnotify.Write}},
			want: []watchTimed{{100 * ms, "a", fsnotify.Write}, {100 * ms, "b", fsnotify.Write}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				got := runDebounce(tc.in, delay, time.Second)
				if !slices.Equal(got, tc.want) {
					t.Errorf("debounce(%v) = %v, want %v", tc.in, got, tc.want)
				}
			})
		})
	}
}

// TestWatchDebounceCloseDropsPending checks that closing the input stops
// the debouncer at once, closing its output, even with a path pending.
func TestWatchDebounceCloseDropsPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := []watchTimed{{0, "a", fsnotify.Write}}
		if got := runDebounce(in, time.Second, 10*time.Millisecond); len(got) != 0 {
			t.Errorf("debounce after close = %v, want nothing", got)
		}
	})
}

// TestWatchDebounceSlowReader checks that input keeps flowing while nobody
// reads the output, and nothing is lost once the reader comes.
func TestWatchDebounceSlowReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(chan event)
		out := make(chan event)
		go debounce(in, out, 10*time.Millisecond, realClock{})
		for _, p := range []string{"a", "b", "c"} {
			in <- event{Path: p, Op: fsnotify.Write}
			time.Sleep(50 * time.Millisecond) // each one is due, and nobody reads
		}
		var got []string
		for range 3 {
			got = append(got, (<-out).Path)
		}
		close(in)
		if _, ok := <-out; ok {
			t.Error("out still open after in closed")
		}
		if want := []string{"a", "b", "c"}; !slices.Equal(got, want) {
			t.Errorf("debounce with a slow reader = %v, want %v", got, want)
		}
	})
}

// runDebounce feeds in at its offsets (in a synctest bubble, so time
// is fake), closes the input after the last event plus linger, and returns
// what came out with the offsets it came at.
func runDebounce(in []watchTimed, delay, linger time.Duration) []watchTimed {
	inCh := make(chan event)
	outCh := make(chan event)
	start := time.Now()
	go debounce(inCh, outCh, delay, realClock{})
	go func() {
		for _, ev := range in {
			time.Sleep(ev.At - time.Since(start))
			inCh <- event{Path: ev.Path, Op: ev.Op}
		}
		time.Sleep(linger)
		close(inCh)
	}()
	var got []watchTimed
	for ev := range outCh {
		got = append(got, watchTimed{time.Since(start), ev.Path, ev.Op})
	}
	return got
}
