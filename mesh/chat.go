package mesh

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxNameRunes bounds a display name (security.md 3.9).
const maxNameRunes = 32

// SanitizeText makes peer-controlled text safe to print on a terminal, in a
// log or in the chat and peers files: invalid UTF-8 becomes U+FFFD, and C0
// and C1 control characters, ANSI escape sequences (CSI, OSC and two-byte
// ESC sequences) and bidirectional overrides are removed. It is idempotent.
func SanitizeText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0x1b {
			i += escapeLen(s[i:])
			continue
		}
		if !droppedRune(r) {
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// escapeLen returns the length of the escape sequence at the start of s
// (which starts with ESC), so the whole sequence is dropped, not only ESC.
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[': // CSI: parameters and intermediates, then a final byte 0x40-0x7e
		for i := 2; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
			if s[i] < 0x20 || s[i] >= 0x7f { // not part of a CSI: stop before it
				return i
			}
		}
		return len(s)
	case ']', 'P', '_', '^': // OSC, DCS, APC, PM: up to BEL or ESC \
		for i := 2; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b {
				if i+1 < len(s) && s[i+1] == '\\' {
					return i + 2
				}
				return i
			}
		}
		return len(s)
	}
	if s[1] < 0x20 || s[1] >= 0x7f {
		return 1 // ESC followed by something that is not part of a sequence
	}
	return 2
}

// droppedRune reports control characters and bidi formatting characters.
func droppedRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f: // marks
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // embeddings, overrides, isolates
		return true
	}
	return false
}

// sanitizeName returns a display name that is safe as one path component and
// on a terminal: printable runes only, no '/' or '\', at most 32 runes, not
// "." or "..". It returns "" when nothing usable is left.
func sanitizeName(s string) string {
	s = SanitizeText(s)
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxNameRunes {
			break
		}
		if !unicode.IsPrint(r) {
			continue
		}
		if r == '/' || r == '\\' {
			r = '_'
		}
		b.WriteRune(r)
		n++
	}
	name := strings.TrimSpace(b.String())
	if name == "." || name == ".." {
		return ""
	}
	return name
}

// defaultName is the display name of a node that was given none.
func defaultName(id PeerID) string { return "node-" + id.Short() }

// encodeChat returns a CHAT payload: seq u64, unixNano i64, then the text as
// the rest of the payload (so 4 KiB of text fits the 4 KiB+16 cap).
func encodeChat(c Chat) ([]byte, error) {
	if len(c.Text) > capChatText {
		return nil, fmt.Errorf("chat of %d bytes (max %d): %w", len(c.Text), capChatText, ErrTooLarge)
	}
	var e encoder
	e.u64(c.Seq)
	var nanos int64
	if !c.Time.IsZero() {
		nanos = c.Time.UnixNano()
	}
	e.u64(uint64(nanos))
	e.raw([]byte(c.Text))
	return e.b, nil
}

// decodeChat parses a CHAT payload and sanitises its text.
func decodeChat(p []byte) (Chat, error) {
	d := decoder{b: p}
	seq := d.u64()
	nanos := int64(d.u64())
	text := d.rest()
	if err := d.finish(); err != nil {
		return Chat{}, fmt.Errorf("decode chat: %w", err)
	}
	if len(text) > capChatText {
		return Chat{}, protocolError("chat text of %d bytes", len(text))
	}
	c := Chat{Seq: seq, Text: SanitizeText(string(text))}
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
