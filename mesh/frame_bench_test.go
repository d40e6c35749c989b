package mesh

import (
	"bytes"
	"testing"
)

// BenchmarkFrameRoundTrip: encode and decode one 1 MiB BYTES frame, the
// per-chunk cost of the wire format outside TLS.
func BenchmarkFrameRoundTrip(b *testing.B) {
	payload := make([]byte, 1<<20)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		f := encodeFrame(frameBytes, payload)
		if _, err := readFrame(bytes.NewReader(f), 2<<20, nil); err != nil {
			b.Fatal(err)
		}
	}
}
