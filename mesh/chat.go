package mesh

import (
	"fmt"
	"time"

	"github.com/meshfs/meshfs/internal/safetext"
	"github.com/meshfs/meshfs/internal/wire"
)

// defaultName is the display name of a node that was given none.
func defaultName(id PeerID) string { return "node-" + id.Short() }

// encodeChat returns a CHAT payload: seq u64, unixNano i64, then the text as
// the rest of the payload (so 4 KiB of text fits the 4 KiB+16 cap).
func encodeChat(c Chat) ([]byte, error) {
	if len(c.Text) > capChatText {
		return nil, fmt.Errorf("chat of %d bytes (max %d): %w", len(c.Text), capChatText, ErrTooLarge)
	}
	var e wire.Encoder
	e.U64(c.Seq)
	var nanos int64
	if !c.Time.IsZero() {
		nanos = c.Time.UnixNano()
	}
	e.U64(uint64(nanos))
	e.Raw([]byte(c.Text))
	return e.B, nil
}

// decodeChat parses a CHAT payload and sanitises its text.
func decodeChat(p []byte) (Chat, error) {
	d := wire.Decoder{B: p}
	seq := d.U64()
	nanos := int64(d.U64())
	text := d.Rest()
	if err := finish(&d); err != nil {
		return Chat{}, fmt.Errorf("decode chat: %w", err)
	}
	if len(text) > capChatText {
		return Chat{}, protocolError("chat text of %d bytes", len(text))
	}
	c := Chat{Seq: seq, Text: safetext.Text(string(text))}
	if nanos != 0 {
		c.Time = time.Unix(0, nanos)
	}
	return c, nil
}

// rateLimiter is a token bucket used by one reader goroutine (no lock). It
// never drops: wait blocks, which stops reading from a flooding peer
// (back-pressure) while every other connection carries on.
type rateLimiter struct {
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newRateLimiter(perSecond, burst int) *rateLimiter {
	return &rateLimiter{rate: float64(perSecond), burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// wait takes one token, blocking until one is available or done is closed;
// it reports false if done closed first.
func (l *rateLimiter) wait(done <-chan struct{}) bool {
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true
	}
	delay := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		l.tokens = 0
		l.last = time.Now()
		return true
	case <-done:
		return false
	}
}
