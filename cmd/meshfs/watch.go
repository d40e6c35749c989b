package main

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	meshsync "github.com/meshfs/meshfs/sync"
)

// watchInterval is how often 'status --watch' asks the node for progress.
const watchInterval = 500 * time.Millisecond

// watchStatus shows live progress bars, with a moving-average rate and ETA,
// for every transfer in flight until ctx is done (Ctrl-C).
func watchStatus(ctx context.Context, w io.Writer, mnt string) error {
	st, err := fetchStatus(ctx, mnt)
	if err != nil {
		return err
	}
	printMembers(w, st.Peers)
	p := mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithWidth(100))
	bars := make(map[string]*watchedBar)
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		updateBars(p, bars, st.Transfers, time.Now())
		select {
		case <-ctx.Done():
			for _, b := range bars {
				b.bar.Abort(false)
			}
			p.Wait()
			return nil
		case <-tick.C:
		}
		if st, err = fetchStatus(ctx, mnt); err != nil {
			p.Shutdown()
			return err
		}
	}
}

// watchedBar is one transfer's live bar and when it was last updated.
type watchedBar struct {
	bar  *mpb.Bar
	last time.Time
	seen bool // present in the latest status
}

// updateBars adds bars for new transfers, advances known ones, and completes
// the bars of transfers that finished.
func updateBars(p *mpb.Progress, bars map[string]*watchedBar, transfers []meshsync.TransferStatus, now time.Time) {
	for _, b := range bars {
		b.seen = false
	}
	for _, t := range transfers {
		key := t.Direction + "\x00" + t.Peer + "\x00" + t.Path
		b, ok := bars[key]
		if !ok {
			b = &watchedBar{bar: addBar(p, t), last: now}
			b.bar.SetCurrent(t.Done)
			bars[key] = b
		}
		b.bar.EwmaSetCurrent(t.Done, now.Sub(b.last))
		b.last, b.seen = now, true
	}
	for key, b := range bars {
		if !b.seen {
			b.bar.SetTotal(-1, true) // gone from the list: delivered
			delete(bars, key)
		}
	}
}

func addBar(p *mpb.Progress, t meshsync.TransferStatus) *mpb.Bar {
	return p.AddBar(t.Size,
		mpb.PrependDecorators(decor.Name(t.Path+" "+transferPeer(t), decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.Percentage(decor.WCSyncSpace),
			decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncSpace),
			decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncSpace), "done"),
		),
	)
}

func fetchStatus(ctx context.Context, mnt string) (meshsync.Status, error) {
	var raw json.RawMessage
	if err := callControl(ctx, mnt, controlRequest{Op: "status"}, &raw); err != nil {
		return meshsync.Status{}, err
	}
	return decodeStatus(raw)
}
