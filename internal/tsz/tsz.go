package tsz

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Sample is one recorded instance.
type Sample struct {
	T    int64 // the sample's time, ns since the Unix epoch (observedAt, or the modification time)
	R    int64 // when it was recorded, ns since the Unix epoch
	Num  bool  // V holds the value (a JSON number); otherwise the value is inside Rest
	V    float64
	Rest []byte // opaque bytes: the rest of the attribute instance (metadata, and the value when !Num); often identical from one sample to the next
}

// Summary is the numeric aggregate of a chunk, computed at encode time and
// stored in the header so that range aggregates over whole chunks never
// decode samples.
type Summary struct {
	N                    int     // samples
	NumN                 int     // numeric samples
	Sum, SumSq, Min, Max float64 // over numeric samples (Min/Max meaningless when NumN == 0)
	MinT, MaxT           int64   // smallest and largest T
}

// Version is the format version byte that starts every chunk.
const Version = 1

// MaxSamples bounds the samples of one chunk: a day of a sensor reporting
// up to 12 times a second. Run-length coding lets a few bytes stand for any
// number of samples, so the decoder cannot bound n by the input length
// alone: when n is over 8 per input byte it first walks the columns without
// storing anything, and allocates only for a chunk that parses.
const MaxSamples = 1 << 20

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("tsz: corrupt chunk")

var (
	errTruncated  = fmt.Errorf("%w: truncated", ErrCorrupt)
	errRunTooLong = fmt.Errorf("%w: run longer than the column", ErrCorrupt)
	errBadWindow  = fmt.Errorf("%w: bad xor window", ErrCorrupt)
)

func corrupt(what string) error { return fmt.Errorf("%w: %s", ErrCorrupt, what) }

// Mode bits of the T, R and V (decimal) columns: how their integer stream
// is formed and written.
const (
	modeOrder    = 0x03 // difference order 0, 1 or 2
	modeRelative = 0x04 // R only: x_i = R_i - T_i; otherwise x_i = R_i - T_0
	modePacked   = 0x08 // packed format; otherwise tokens
	modeUnit     = 0x30 // T and R: time unit (unitNs...unitS) << 4
	modeXor      = 0xff // V only: xor encoding
)

// Encode appends the encoding of samples to dst, in the order given
// (callers pass them sorted by T, ties in recording order; any order
// round-trips, sorted order compresses best). A sample's V is not stored
// when !Num. Encode panics if len(samples) > MaxSamples, which is a bug in
// the caller's chunking.
func Encode(dst []byte, samples []Sample) []byte {
	n := len(samples)
	if n > MaxSamples {
		panic(fmt.Sprintf("tsz: Encode of %d samples, more than MaxSamples", n))
	}
	dst = append(dst, Version)
	dst = binary.AppendUvarint(dst, uint64(n))
	if n == 0 {
		return dst
	}
	sum := summarize(samples)
	var vp valuePlan
	if sum.NumN > 0 {
		vp = planValues(samples)
	}
	dst = binary.AppendVarint(dst, sum.MinT)
	dst = binary.AppendUvarint(dst, uint64(sum.MaxT)-uint64(sum.MinT))
	dst = binary.AppendUvarint(dst, uint64(sum.NumN))
	if sum.NumN > 0 {
		dst = appendFloat(dst, sum.Sum)
		dst = appendFloat(dst, sum.SumSq)
		dst = appendMinMax(dst, sum, vp)
	}
	dst = appendT(dst, samples, sum.MinT)
	dst = appendR(dst, samples)
	if sum.NumN > 0 && sum.NumN < n {
		dst = appendFlags(dst, samples)
	}
	if sum.NumN > 0 {
		dst = appendValues(dst, samples, vp)
	}
	return appendRest(dst, samples)
}

func appendFloat(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

// appendMinMax writes the summary's Min and Max: as decimals when the
// values are (they are then two of the values, so exact at the same
// scale), which saves about 12 bytes a chunk, else as float64s.
func appendMinMax(dst []byte, sum Summary, p valuePlan) []byte {
	if p.decimal {
		lo, ok1 := decimal(sum.Min, p.d)
		hi, ok2 := decimal(sum.Max, p.d)
		if ok1 && ok2 {
			dst = append(dst, byte(1+p.d))
			dst = binary.AppendVarint(dst, lo)
			return binary.AppendVarint(dst, hi)
		}
	}
	dst = append(dst, 0)
	dst = appendFloat(dst, sum.Min)
	return appendFloat(dst, sum.Max)
}

func summarize(s []Sample) Summary {
	sum := Summary{N: len(s), MinT: s[0].T, MaxT: s[0].T}
	for i := range s {
		sum.MinT = min(sum.MinT, s[i].T)
		sum.MaxT = max(sum.MaxT, s[i].T)
		if !s[i].Num {
			continue
		}
		v := s[i].V
		switch {
		case sum.NumN == 0:
			sum.Min, sum.Max = v, v
		case v != v || v == 0 || math.IsInf(v, 0): // NaN, ±0, ±Inf: math.Min's rules
			sum.Min, sum.Max = math.Min(sum.Min, v), math.Max(sum.Max, v)
		case v < sum.Min:
			sum.Min = v
		case v > sum.Max:
			sum.Max = v
		}
		sum.NumN++
		sum.Sum += v
		sum.SumSq += v * v
	}
	return sum
}

// choice is the smallest way found so far to write a column.
type choice struct {
	size int // 0 before the first candidate
	mode byte
}

// consider measures both formats of a candidate stream formed with mode.
func (c *choice) consider(cost *intCost, mode byte) {
	tok, packed := cost.sizes()
	if c.size == 0 || tok < c.size {
		c.size, c.mode = tok, mode
	}
	if packed < c.size {
		c.size, c.mode = packed, mode|modePacked
	}
}

// appendT writes the T column: x_i = (T_i - MinT) / unit, order 2 (delta
// of delta, which is 0 for every regular sample).
func appendT(dst []byte, s []Sample, minT int64) []byte {
	u := uint8(unitS)
	for i := range s {
		if u == unitNs {
			break
		}
		u = coarsest(s[i].T-minT, u)
	}
	q, cost := seq{order: 2}, intCost{head: 2}
	for i := range s {
		cost.add(q.residual(inUnit(s[i].T-minT, u)))
	}
	var c choice
	c.consider(&cost, u<<4|2)
	dst = append(dst, c.mode)
	q = seq{order: 2}
	w := newIntWriter(dst, c.mode&modePacked != 0, 2)
	for i := range s {
		w.put(q.residual(inUnit(s[i].T-minT, u)))
	}
	return w.finish()
}

// rX is the value whose differences the R column stores, before division by
// the unit.
func rX(mode byte, s []Sample, i int) int64 {
	if mode&modeRelative != 0 {
		return s[i].R - s[i].T
	}
	return s[i].R - s[0].T
}

func appendR(dst []byte, s []Sample) []byte {
	mode := chooseR(s)
	dst = append(dst, mode)
	q, u := seq{order: mode & modeOrder}, mode&modeUnit>>4
	w := newIntWriter(dst, mode&modePacked != 0, int(q.order))
	for i := range s {
		w.put(q.residual(inUnit(rX(mode, s, i), u)))
	}
	return w.finish()
}

// chooseR returns the mode of the smallest R stream among three shapes:
// imported data (R constant or regular: absolute, order 2), live data (R =
// T + jitter: relative, order 0) and a constant lag behind irregular times
// (relative, order 1).
func chooseR(s []Sample) byte {
	shapes := [...]byte{2, modeRelative, modeRelative | 1}
	// The two commonest shapes have all-zero residuals after the first, the
	// smallest any stream can be: no need to measure.
	same, constant := true, true
	for i := range s {
		same = same && s[i].R == s[i].T
		constant = constant && s[i].R == s[0].R
	}
	switch {
	case same:
		return shapes[1] // relative, order 0: one run token
	case constant:
		x := rX(shapes[0], s, 0)
		return coarsest(x, unitS)<<4 | shapes[0] // absolute, order 2: one value, one run token
	}
	units := [len(shapes)]uint8{unitS, unitS, unitS}
	for i := range s {
		for j, mode := range shapes {
			if units[j] != unitNs {
				units[j] = coarsest(rX(mode, s, i), units[j])
			}
		}
	}
	var (
		c    choice
		qs   [len(shapes)]seq
		cost [len(shapes)]intCost
	)
	for j, mode := range shapes {
		qs[j], cost[j] = seq{order: mode & modeOrder}, intCost{head: int(mode & modeOrder)}
	}
	for i := range s {
		for j, mode := range shapes {
			cost[j].add(qs[j].residual(inUnit(rX(mode, s, i), units[j])))
		}
	}
	for j, mode := range shapes {
		c.consider(&cost[j], units[j]<<4|mode)
	}
	return c.mode
}

func appendFlags(dst []byte, s []Sample) []byte {
	cur := s[0].Num
	dst = append(dst, b2u(cur))
	run := 0
	for i := range s {
		if s[i].Num != cur {
			dst = binary.AppendUvarint(dst, uint64(run))
			cur, run = s[i].Num, 0
		}
		run++
	}
	return binary.AppendUvarint(dst, uint64(run))
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// appendRest writes the Rest column: (run, length, bytes) per run of
// identical byte strings.
func appendRest(dst []byte, s []Sample) []byte {
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && bytes.Equal(s[j].Rest, s[i].Rest) {
			j++
		}
		dst = binary.AppendUvarint(dst, uint64(j-i))
		dst = binary.AppendUvarint(dst, uint64(len(s[i].Rest)))
		dst = append(dst, s[i].Rest...)
		i = j
	}
	return dst
}

// header is the parsed fixed part of a chunk.
type header struct {
	Summary
	pos int // where the columns start
}

func readHeader(b []byte) (header, error) {
	var h header
	if len(b) == 0 {
		return h, errTruncated
	}
	if b[0] != Version {
		return h, fmt.Errorf("%w: unknown version %d", ErrCorrupt, b[0])
	}
	pos := 1
	n, k := binary.Uvarint(b[pos:])
	if k <= 0 {
		return h, errTruncated
	}
	pos += k
	if n > MaxSamples {
		return h, corrupt("too many samples")
	}
	h.N = int(n)
	if n == 0 {
		h.pos = pos
		return h, nil
	}
	minT, k := binary.Varint(b[pos:])
	if k <= 0 {
		return h, errTruncated
	}
	pos += k
	span, k := binary.Uvarint(b[pos:])
	if k <= 0 {
		return h, errTruncated
	}
	pos += k
	maxT := int64(uint64(minT) + span)
	if maxT < minT {
		return h, corrupt("MaxT < MinT")
	}
	numN, k := binary.Uvarint(b[pos:])
	if k <= 0 {
		return h, errTruncated
	}
	pos += k
	if numN > n {
		return h, corrupt("more numeric samples than samples")
	}
	h.MinT, h.MaxT, h.NumN = minT, maxT, int(numN)
	if numN > 0 {
		if len(b)-pos < 17 {
			return h, errTruncated
		}
		f := func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b[pos+8*i:])) }
		h.Sum, h.SumSq = f(0), f(1)
		pos += 16
		form := b[pos]
		pos++
		switch {
		case form == 0:
			if len(b)-pos < 16 {
				return h, errTruncated
			}
			h.Min, h.Max = f(0), f(1)
			pos += 16
		case form <= 1+maxDecimals:
			scale := pow10[form-1]
			lo, n := binary.Varint(b[pos:])
			if n <= 0 {
				return h, errTruncated
			}
			pos += n
			hi, n := binary.Varint(b[pos:])
			if n <= 0 {
				return h, errTruncated
			}
			pos += n
			h.Min, h.Max = float64(lo)/scale, float64(hi)/scale
		default:
			return h, corrupt("bad Min/Max form")
		}
	}
	h.pos = pos
	return h, nil
}

// Len reports the number of samples of a chunk from its header.
func Len(b []byte) (int, error) {
	h, err := readHeader(b)
	return h.N, err
}

// Summarize returns the aggregate stored in a chunk's header, without
// decoding the columns (so it does not detect corrupt columns).
func Summarize(b []byte) (Summary, error) {
	h, err := readHeader(b)
	if err != nil {
		return Summary{}, err
	}
	return h.Summary, nil
}

// Decode appends the samples of chunk b to dst. Rest slices alias b (capped,
// so appending to one copies); consecutive samples with identical Rest share
// one slice, and an empty Rest decodes as nil. V is 0 when !Num. On error it
// returns dst unchanged in length and an error wrapping ErrCorrupt.
func Decode(b []byte, dst []Sample) ([]Sample, error) {
	start := len(dst)
	out, err := decode(b, dst)
	if err != nil {
		return dst[:start], err
	}
	return out, nil
}

// Mode bits allowed in the T and R columns.
const (
	tModes = modeUnit | modePacked | modeOrder
	rModes = tModes | modeRelative
)

// intMode parses the mode byte at b[pos] of the T or R column.
func intMode(b []byte, pos int, allowed byte) (byte, error) {
	if pos >= len(b) || b[pos]&^allowed != 0 || b[pos]&modeOrder == 3 {
		return 0, corrupt("bad mode")
	}
	return b[pos], nil
}

func decode(b []byte, dst []Sample) ([]Sample, error) {
	h, err := readHeader(b)
	if err != nil {
		return dst, err
	}
	n := h.N
	if n == 0 {
		if h.pos != len(b) {
			return dst, corrupt("trailing bytes")
		}
		return dst, nil
	}
	// Fewer than one bit a sample: only run-length coding can explain it,
	// or corruption. Walk the columns before allocating n samples.
	if uint64(n) > 8*uint64(len(b)) {
		if err := check(b, h); err != nil {
			return dst, err
		}
	}
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	s := dst[start:]

	// T.
	mode, err := intMode(b, h.pos, tModes)
	if err != nil {
		return dst, fmt.Errorf("%w (T column)", err)
	}
	q := seq{order: mode & modeOrder}
	unit := unitNanos[mode&modeUnit>>4]
	rd := newIntReader(b, h.pos+1, mode&modePacked != 0, int(q.order), n)
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range s {
		t := h.MinT + q.value(rd.next())*unit
		s[i].T = t
		lo, hi = min(lo, t), max(hi, t)
	}
	if err := rd.done(); err != nil {
		return dst, fmt.Errorf("%w (T column)", err)
	}
	if lo != h.MinT || hi != h.MaxT {
		return dst, corrupt("times outside the header's range")
	}

	// R.
	if mode, err = intMode(b, rd.pos, rModes); err != nil {
		return dst, fmt.Errorf("%w (R column)", err)
	}
	q = seq{order: mode & modeOrder}
	unit = unitNanos[mode&modeUnit>>4]
	rd = newIntReader(b, rd.pos+1, mode&modePacked != 0, int(q.order), n)
	if mode&modeRelative != 0 {
		for i := range s {
			s[i].R = s[i].T + q.value(rd.next())*unit
		}
	} else {
		t0 := s[0].T
		for i := range s {
			s[i].R = t0 + q.value(rd.next())*unit
		}
	}
	if err := rd.done(); err != nil {
		return dst, fmt.Errorf("%w (R column)", err)
	}
	pos := rd.pos

	// Num flags.
	switch h.NumN {
	case 0, n:
		num := h.NumN > 0
		for i := range s {
			s[i].Num = num
			s[i].V = 0
		}
	default:
		if pos, err = decodeFlags(b, pos, s, n, h.NumN); err != nil {
			return dst, err
		}
	}

	// V.
	if h.NumN > 0 {
		if pos, err = decodeValues(b, pos, s, h.NumN); err != nil {
			return dst, fmt.Errorf("%w (V column)", err)
		}
	}

	if pos, err = decodeRest(b, pos, s, n); err != nil {
		return dst, err
	}
	if pos != len(b) {
		return dst, corrupt("trailing bytes")
	}
	return dst, nil
}

// check walks the columns of a chunk with n > 0 samples as decode does,
// without storing samples, and reports the first error. It does not compare
// the times with the header.
func check(b []byte, h header) error {
	pos := h.pos
	for _, allowed := range [...]byte{tModes, rModes} {
		mode, err := intMode(b, pos, allowed)
		if err != nil {
			return err
		}
		rd := newIntReader(b, pos+1, mode&modePacked != 0, int(mode&modeOrder), h.N)
		for range h.N {
			rd.next()
		}
		if err := rd.done(); err != nil {
			return err
		}
		pos = rd.pos
	}
	var err error
	if h.NumN > 0 && h.NumN < h.N {
		if pos, err = decodeFlags(b, pos, nil, h.N, h.NumN); err != nil {
			return err
		}
	}
	if h.NumN > 0 {
		if pos, err = skipValues(b, pos, h.NumN); err != nil {
			return err
		}
	}
	if pos, err = decodeRest(b, pos, nil, h.N); err != nil {
		return err
	}
	if pos != len(b) {
		return corrupt("trailing bytes")
	}
	return nil
}

// decodeFlags reads the flags column of n samples into s (nil: only check).
func decodeFlags(b []byte, pos int, s []Sample, n, numN int) (int, error) {
	if pos >= len(b) || b[pos] > 1 {
		return 0, corrupt("bad flags")
	}
	cur := b[pos] == 1
	pos++
	count := 0
	for i := 0; i < n; {
		run, k := binary.Uvarint(b[pos:])
		if k <= 0 {
			return 0, errTruncated
		}
		pos += k
		if run == 0 || run > uint64(n-i) {
			return 0, corrupt("bad flag run")
		}
		if s != nil {
			for j := range int(run) {
				s[i+j].Num = cur
				s[i+j].V = 0
			}
		}
		if cur {
			count += int(run)
		}
		i += int(run)
		cur = !cur
	}
	if count != numN {
		return 0, corrupt("flags disagree with the header")
	}
	return pos, nil
}

// decodeRest reads the Rest column of n samples into s (nil: only check).
func decodeRest(b []byte, pos int, s []Sample, n int) (int, error) {
	for i := 0; i < n; {
		run, k := binary.Uvarint(b[pos:])
		if k <= 0 {
			return 0, errTruncated
		}
		pos += k
		if run == 0 || run > uint64(n-i) {
			return 0, corrupt("bad Rest run")
		}
		l, k := binary.Uvarint(b[pos:])
		if k <= 0 {
			return 0, errTruncated
		}
		pos += k
		if l > uint64(len(b)-pos) {
			return 0, errTruncated
		}
		var rest []byte
		if l > 0 {
			end := pos + int(l)
			rest = b[pos:end:end]
			pos = end
		}
		if s != nil {
			for j := range int(run) {
				s[i+j].Rest = rest
			}
		}
		i += int(run)
	}
	return pos, nil
}
