package present

import (
	"testing"
	"time"
)

func TestFormats(t *testing.T) {
	now := time.Now()
	tests := []struct{ got, want string }{
		{SI(999), "999 B"},
		{SI(5_000_000), "5.0 MB"},
		{IEC(1023), "1023 B"},
		{IEC(64 << 20), "64.0 MiB"},
		{IEC(5 << 30), "5.0 GiB"},
		{RTT(0), "-"},
		{RTT(300 * time.Microsecond), "0.3ms"},
		{RTT(12 * time.Millisecond), "12ms"},
		{RTT(1200 * time.Millisecond), "1.2s"},
		{Seen(time.Time{}, now), "-"},
		{Seen(now, now), "now"},
		{Seen(now.Add(-5*time.Second), now), "5s ago"},
		{Seen(now.Add(-3*time.Minute), now), "3m ago"},
		{Seen(now.Add(-96*time.Hour), now), "4d ago"},
		{Since(time.Time{}, now), "-"},
		{Since(now, now), "now"},
		{Since(time.Date(2026, 12, 7, 14, 3, 27, 0, time.UTC), time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)), "14:03:27"},
		{Since(time.Date(2026, 12, 6, 14, 3, 27, 0, time.UTC), time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)), "2026-12-06 14:03"},
		{ShortID("i4csxazgabcdef"), "i4csxazg"},
		{ShortID("abc"), "abc"},
	}
	for i, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("case %d: got %q, want %q", i, tc.got, tc.want)
		}
	}
}
