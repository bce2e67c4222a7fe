// Package tsz is the chunk codec of the time-series (history) store: it
// turns up to MaxSamples samples of one series (one attribute instance of
// one entity) into a compact byte string and back.
//
// The design goals, in order: exact round trips (every int64 time, every
// float64 bit pattern, every byte string), robustness (any input decodes
// or returns an error wrapping ErrCorrupt; never a panic, and samples are
// allocated only for a count the input can back), compactness for regular
// numeric sensor series, and speed. The chunk is columnar: the times, the
// record times, the numeric flags, the values and the opaque rest are each
// stored together, so that each column's regularity can be exploited, and a
// header carries the count and a numeric summary so that Len and Summarize
// read a few bytes only.
//
// # Format, version 1
//
// Notation. uvarint: unsigned LEB128 (7 bits a byte, least significant
// group first, high bit set on all but the last byte), as Go's
// encoding/binary. zigzag(x) = (x << 1) ^ (x >> 63), mapping 0, -1, 1, -2…
// to 0, 1, 2, 3…; varint: uvarint of zigzag. f64: the 8 bytes of an IEEE
// 754 float64, little-endian. All integer arithmetic is on int64 and wraps
// modulo 2^64. Columns follow one another with no length prefixes; bytes
// after the last column make the chunk corrupt.
//
//	version   byte  1
//	n         uvarint, number of samples, 0..1048576 (MaxSamples)
//	                     (n == 0: the chunk ends here)
//	MinT      varint
//	MaxT-MinT uvarint (computed modulo 2^64)
//	NumN      uvarint, numeric samples, <= n
//	if NumN > 0:
//	  Sum     f64  the sum of the numeric values, added in sample order
//	  SumSq   f64  the sum of their squares, likewise
//	  mm      byte how Min and Max follow:
//	          0:     Min f64, Max f64
//	          1..10: Min varint k, Max varint k; the value is
//	                 float64(k) / 10^(mm-1) (one IEEE division)
//	          Min and Max fold math.Min and math.Max over the values.
//	T column
//	R column
//	flags column, only if 0 < NumN < n
//	V column, only if NumN > 0
//	Rest column
//
// Integer streams. The T, R and V columns store a sequence x_0…x_(m-1) as
// residuals r_0…r_(m-1) of a difference order chosen per column:
//
//	order 0: r_i = x_i
//	order 1: r_0 = x_0, r_i = x_i - x_(i-1)
//	order 2: r_0 = x_0, r_1 = x_1 - x_0,
//	         r_i = (x_i - x_(i-1)) - (x_(i-1) - x_(i-2))
//
// and writes the residuals in one of two formats:
//
//   - tokens: uvarints u until m residuals are covered.
//     u odd: one residual r with zigzag(r) = (u >> 1) + 1 (never 0);
//     u even, u > 0: u >> 1 zero residuals (a run; it may not go past m);
//     u == 0: one residual as 8 bytes, little-endian two's complement
//     (the encoder uses it where the token would take 10 bytes).
//   - packed: the first min(order, m) residuals as varints, then the others
//     in blocks of 32 (the last may be shorter), each block a byte w
//     (0..64) followed by the block's zigzag(r) in w bits each, most
//     significant bit first, padded with zero bits to a whole byte:
//     ceil(count*w/8) bytes.
//
// A column's mode byte says how its stream is formed and written:
// bits 0-1 the order (3 is invalid), bit 2 R's shape, bit 3 set for
// packed, bits 4-5 (T and R) the time unit: 0 ns, 1 µs (10^3 ns), 2 ms
// (10^6), 3 s (10^9); the stream then holds x divided by the unit, and the
// decoder multiplies back.
//
//	T column:  mode byte (bit 2 clear), stream of n values
//	           x_i = (T_i - MinT) / unit
//	R column:  mode byte, stream of n values
//	           bit 2 clear: x_i = (R_i - T_0) / unit
//	           bit 2 set:   x_i = (R_i - T_i) / unit
//	flags:     a byte 0 or 1, the flag of sample 0, then uvarint run lengths
//	           (each >= 1, summing to n) of alternating flags, starting
//	           with that one; the number of true flags must equal NumN
//	V column:  mode byte, then the NumN numeric samples' values:
//	           0xFF: xor (below);
//	           otherwise decimal: d = mode >> 4 (0..9), bit 2 clear, and a
//	           stream of NumN integers k; the value is float64(k) / 10^d
//	           (one IEEE division, so the encoder checks exactly that)
//	Rest:      (uvarint run >= 1, uvarint length, length bytes) repeated
//	           until the runs sum to n; each run of samples shares the bytes
//
// Samples with Num false have no value in the V column and decode with
// V = 0. An empty Rest decodes as nil.
//
// Xor (Gorilla, Pelkonen et al., VLDB 2015), a bit stream written most
// significant bit first and padded with zero bits to a whole byte: the first
// value's 64 bits; then for each next value, with x = bits(v) XOR
// bits(previous):
//
//	'0'                      x == 0
//	'10' then sig bits       x's meaningful bits in the current window:
//	                         x = bits << (64 - lead - sig) (needs a window)
//	'11' lead(5 bits) sig(6 bits, 0 meaning 64) then sig bits
//	                         a new window (lead + sig <= 64)
//
// # Choices
//
// T is stored as delta of delta: a regular series has all-zero residuals
// after the first two, one run token for the whole chunk. R usually is
// either constant (imported data: absolute, order 2) or T plus a small lag
// (live data: relative to T, order 0), so both shapes are tried, with a
// relative order 1 for a constant lag behind irregular times. Values that
// are short decimals, as sensors report them, become small integers; the
// encoder picks the cheapest of orders 0 (spiky: zeros and bursts), 1 and
// 2 (smooth), and of the two formats, by measuring them (intCost) rather
// than guessing; xor covers everything else exactly. Times that are whole
// seconds, milliseconds or microseconds are divided by the unit, which
// matters for irregular times only.
//
// # Measured
//
// A year of 15-minute readings (35,040 samples) with a 20-byte Rest, in
// bytes per sample (TestCompression, go test -v -run Compression), R
// constant (imported) / R = T + 0.05..2 s of ns jitter (live), chunks of a
// UTC day (96 samples) and of 1024 samples:
//
//	                                 imported        live
//	                               day    1024    day    1024
//	(a) temperature, 1 decimal     1.37   0.61    5.29   4.63
//	(b) energy meter kWh, 3 dec.   2.23   1.41    6.14   5.42
//	(c) water flow, zeros at night 1.79   1.04    5.73   5.07
//	(d) random full-precision      7.85   6.97   11.77  11.00
//
// Door events (0/1 at irregular whole-second times, live): 6.57 and 5.98
// (10.3 and 9.7 without time units). Live R costs about 4 bytes a sample: ns jitter of up to 2 s is 31 bits of
// noise. Of a 132-byte imported day chunk of (a), the values take 53 bytes;
// the rest is fixed cost: header with the summary 39, T 6, R 12, Rest 22.
//
// Speed on one core of the 2-core AMD EPYC build machine (go test -bench .,
// series (a), 1024-sample chunks): encode about 40 ns a sample imported, 55
// live; decode about 8 ns a sample. (Timings on a machine shared with other
// work vary by up to 2x; these are the quiet runs.)
package tsz
