// The encoder below is a cut-down copy of filippo.io/age/internal/bech32
// (BIP 173), which carries this notice:
//
// Copyright (c) 2017 Takatoshi Nakagawa
// Copyright (c) 2019 The age Authors
//
// Permission is hereby granted, free of charge, to any person obtaining a copy
// of this software and associated documentation files (the "Software"), to deal
// in the Software without restriction, including without limitation the rights
// to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
// copies of the Software, and to permit persons to whom the Software is
// furnished to do so, subject to the following conditions:
//
// The above copyright notice and this permission notice shall be included in
// all copies or substantial portions of the Software.
//
// THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
// IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
// FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
// AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
// LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
// OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
// THE SOFTWARE.

package seal

import "strings"

// age builds X25519 keys only from their Bech32 strings and keeps its
// encoder internal; its one public encoder (plugin.EncodeX25519Recipient)
// covers recipients only and would pull age's plugin runner (os/exec, a
// terminal) into seal. So the 32-byte keys are written as strings here and
// at once parsed back by age, whose decoder checks the checksum; the tests
// compare this encoder's output with age's own String methods.

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// encodeBech32 returns data under hrp in Bech32, upper-case if hrp is.
// Unlike BIP 173 it has no length limit, as age's has none.
func encodeBech32(hrp string, data []byte) string {
	lower := strings.ToLower(hrp)
	values := toFiveBits(data)
	var b strings.Builder
	b.WriteString(lower)
	b.WriteByte('1')
	for _, v := range values {
		b.WriteByte(bech32Charset[v])
	}
	for _, v := range bech32Checksum(lower, values) {
		b.WriteByte(bech32Charset[v])
	}
	if hrp != lower {
		return strings.ToUpper(b.String())
	}
	return b.String()
}

// toFiveBits regroups bytes into 5-bit values, zero-padding the last.
func toFiveBits(data []byte) []byte {
	var out []byte
	acc, bits := uint32(0), 0
	for _, c := range data {
		acc = acc<<8 | uint32(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			out = append(out, byte(acc>>bits)&31)
		}
	}
	if bits > 0 {
		out = append(out, byte(acc<<(5-bits))&31)
	}
	return out
}

// bech32Checksum returns the six check values for hrp (lower-case) and values.
func bech32Checksum(hrp string, values []byte) []byte {
	var in []byte
	for _, c := range []byte(hrp) {
		in = append(in, c>>5)
	}
	in = append(in, 0)
	for _, c := range []byte(hrp) {
		in = append(in, c&31)
	}
	in = append(in, values...)
	mod := bech32Polymod(append(in, 0, 0, 0, 0, 0, 0)) ^ 1
	sum := make([]byte, 6)
	for i := range sum {
		sum[i] = byte(mod>>(5*(5-i))) & 31
	}
	return sum
}

// bech32Polymod is BIP 173's BCH checksum over 5-bit values.
func bech32Polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := range 5 {
			if top>>i&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}
