package tsz

import (
	"encoding/binary"
	"math/bits"
)

// An integer stream holds a sequence of int64 residuals in one of two
// formats (see the package doc):
//
//   - tokens: one uvarint per nonzero residual, and one per run of zeros.
//     Best when residuals are mostly zero (regular times, constant R) or
//     irregular in size.
//   - packed: blocks of 32 residuals, each block a bit width and the
//     residuals' zigzag codes in that many bits. Best when residuals are
//     small but rarely zero (a temperature's changes cost 3 to 5 bits
//     instead of a byte).
//
// The encoder measures both (intCost) and writes the smaller.

// packBlock is the number of residuals per packed block: small enough that
// an outlier widens few values, large enough that the width byte is cheap.
const packBlock = 32

// zigzag maps signed to unsigned so that small magnitudes get small codes.
func zigzag(x int64) uint64 { return uint64(x<<1) ^ uint64(x>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// token returns the uvarint token of a nonzero residual, or ok == false
// when the 9-byte escape is shorter (the token would take 10 bytes: |r| of
// about 2^61 or more).
func token(r int64) (u uint64, ok bool) {
	zz := zigzag(r) - 1 // r != 0, so zigzag(r) >= 1
	return zz<<1 | 1, zz < 1<<62
}

func uvarintLen(u uint64) int { return (bits.Len64(u|1) + 6) / 7 }

// intCost measures the size of a residual stream in both formats without
// writing it. head is the number of leading residuals that the packed
// format writes as varints (the stream's difference order).
type intCost struct {
	head   int
	tok    int    // token format bytes, pending zeros excluded
	zeros  uint64 // pending zero residuals
	packed int    // packed format bytes, pending block excluded
	blkOr  uint64 // OR of the pending block's zigzag codes
	blkN   int
}

func (c *intCost) add(r int64) {
	zz := zigzag(r)
	if c.head > 0 {
		c.head--
		c.packed += uvarintLen(zz)
	} else {
		c.blkOr |= zz
		if c.blkN++; c.blkN == packBlock {
			c.packed += 1 + bits.Len64(c.blkOr)*packBlock/8
			c.blkOr, c.blkN = 0, 0
		}
	}
	if zz == 0 {
		c.zeros++
		return
	}
	if c.zeros > 0 {
		c.tok += uvarintLen(c.zeros << 1)
		c.zeros = 0
	}
	// The token (zz-1)<<1|1 has bits.Len64(zz-1)+1 bits, 7 per byte; past
	// 63 bits the 9-byte escape replaces it.
	c.tok += min(bits.Len64(zz-1)/7+1, 9)
}

// sizes returns the total size in the token and packed formats.
func (c *intCost) sizes() (tok, packed int) {
	tok, packed = c.tok, c.packed
	if c.zeros > 0 {
		tok += uvarintLen(c.zeros << 1)
	}
	if c.blkN > 0 {
		packed += 1 + (c.blkN*bits.Len64(c.blkOr)+7)/8
	}
	return tok, packed
}

// intWriter appends residuals to b in either format.
type intWriter struct {
	b      []byte
	packed bool
	head   int    // packed: leading residuals still to write as varints
	zeros  uint64 // tokens: pending zero residuals, written as one run token
	blkN   int
	blk    [packBlock]uint64 // packed: pending zigzag codes
}

func newIntWriter(b []byte, packed bool, head int) intWriter {
	return intWriter{b: b, packed: packed, head: head}
}

func (w *intWriter) put(r int64) {
	switch {
	case w.packed && w.head > 0:
		w.head--
		w.b = binary.AppendVarint(w.b, r)
	case w.packed:
		w.blk[w.blkN] = zigzag(r)
		if w.blkN++; w.blkN == packBlock {
			w.flushBlock()
		}
	case r == 0:
		w.zeros++
	default:
		w.putToken(r)
	}
}

func (w *intWriter) putToken(r int64) {
	if w.zeros > 0 {
		w.b = binary.AppendUvarint(w.b, w.zeros<<1)
		w.zeros = 0
	}
	u, ok := token(r)
	switch {
	case !ok:
		// Escape: 8 raw bytes.
		w.b = append(w.b, 0)
		w.b = binary.LittleEndian.AppendUint64(w.b, uint64(r))
	case u < 0x80:
		w.b = append(w.b, byte(u))
	default:
		w.b = binary.AppendUvarint(w.b, u)
	}
}

func (w *intWriter) flushBlock() {
	var or uint64
	for _, u := range w.blk[:w.blkN] {
		or |= u
	}
	width := uint(bits.Len64(or))
	w.b = append(w.b, byte(width))
	if width > 0 {
		bw := bitWriter{b: w.b}
		for _, u := range w.blk[:w.blkN] {
			bw.write64(u, width)
		}
		w.b = bw.finish()
	}
	w.blkN = 0
}

// finish writes any pending run or block and returns the buffer.
func (w *intWriter) finish() []byte {
	if w.zeros > 0 {
		w.b = binary.AppendUvarint(w.b, w.zeros<<1)
		w.zeros = 0
	}
	if w.blkN > 0 {
		w.flushBlock()
	}
	return w.b
}

// intReader reads the residuals of one stream of a known length. Errors are
// sticky: after the first one next returns 0 and err is set, so decode loops
// run their fixed number of iterations and check once at the end.
type intReader struct {
	b      []byte
	pos    int
	packed bool
	head   int // packed: leading varint residuals still to read
	left   int // packed: residuals not yet read into blk or head
	// Pending residuals: blk[bi%packBlock] for bi < bn. For a zero run (a
	// run token, a width-0 block) blk is all zeros and bn may exceed its
	// length, so that one fast path serves both.
	bi, bn uint64
	blk    [packBlock]int64
	err    error
}

func newIntReader(b []byte, pos int, packed bool, head, n int) intReader {
	return intReader{b: b, pos: pos, packed: packed, head: min(head, n), left: n - min(head, n)}
}

// next is small enough to inline, so most values cost a compare and a load.
func (r *intReader) next() int64 {
	if r.bi >= r.bn {
		r.refill()
	}
	r.bi++
	return r.blk[(r.bi-1)%packBlock]
}

// refill queues at least one residual (0 after an error).
func (r *intReader) refill() {
	switch {
	case !r.packed:
		r.token()
	case r.head > 0:
		r.head--
		v, k := binary.Varint(r.b[r.pos:])
		if k <= 0 {
			r.fail()
			return
		}
		r.pos += k
		r.one(v)
	default:
		r.block()
	}
}

func (r *intReader) one(v int64) {
	r.blk[0] = v
	r.bi, r.bn = 0, 1
}

// zeros queues a run of n > 0 zero residuals.
func (r *intReader) zeros(n uint64) {
	r.blk = [packBlock]int64{}
	r.bi, r.bn = 0, n
}

func (r *intReader) token() {
	var u uint64
	if r.pos < len(r.b) && r.b[r.pos] < 0x80 {
		u = uint64(r.b[r.pos])
		r.pos++
	} else {
		v, k := binary.Uvarint(r.b[r.pos:])
		if k <= 0 {
			r.fail()
			return
		}
		u = v
		r.pos += k
	}
	switch {
	case u&1 == 1:
		r.one(unzigzag(u>>1 + 1))
	case u == 0:
		if len(r.b)-r.pos < 8 {
			r.fail()
			return
		}
		r.one(int64(binary.LittleEndian.Uint64(r.b[r.pos:])))
		r.pos += 8
	default:
		r.zeros(u >> 1)
	}
}

// block reads the next packed block.
func (r *intReader) block() {
	cnt := min(r.left, packBlock)
	if cnt == 0 || r.pos >= len(r.b) || r.b[r.pos] > 64 {
		r.fail()
		return
	}
	width := uint(r.b[r.pos])
	r.pos++
	r.left -= cnt
	if width == 0 {
		r.zeros(uint64(cnt))
		return
	}
	nbytes := (cnt*int(width) + 7) / 8
	if nbytes > len(r.b)-r.pos {
		r.fail()
		return
	}
	blk := r.blk[:cnt]
	if width <= 56 && len(r.b)-r.pos >= nbytes+8 {
		// Every value's first byte has 8 readable bytes after it (the
		// following columns), so each is one unaligned load.
		b, o := r.b[r.pos:], uint(0)
		for i := range blk {
			blk[i] = unzigzag(binary.BigEndian.Uint64(b[o>>3:]) << (o & 7) >> (64 - width))
			o += width
		}
	} else {
		br := bitReader{b: r.b[:r.pos+nbytes], pos: uint(r.pos) * 8}
		for i := range blk {
			blk[i] = unzigzag(br.read64(width))
		}
	}
	r.pos += nbytes
	r.bi, r.bn = 0, uint64(cnt)
}

func (r *intReader) fail() {
	if r.err == nil {
		r.err = errTruncated
	}
	r.pos = len(r.b)
	r.left, r.head = 0, 0
	r.one(0)
}

// done reports an error if reading failed or a run claimed more residuals
// than the stream has.
func (r *intReader) done() error {
	if r.err != nil {
		return r.err
	}
	if r.bi != r.bn {
		return errRunTooLong
	}
	return nil
}

// seq turns values into residuals (encoding) and back (decoding) for an
// order 0, 1 or 2 difference, as defined in the package doc. Arithmetic
// wraps, so every int64 sequence round-trips.
type seq struct {
	order   uint8
	started bool
	x, d    int64 // previous value and previous delta
}

func (q *seq) residual(x int64) int64 {
	switch {
	case q.order == 0:
		return x
	case !q.started:
		q.started = true
		q.x = x
		return x
	case q.order == 1:
		r := x - q.x
		q.x = x
		return r
	default:
		delta := x - q.x
		r := delta - q.d
		q.x, q.d = x, delta
		return r
	}
}

func (q *seq) value(r int64) int64 {
	switch {
	case q.order == 0:
		return r
	case !q.started:
		q.started = true
		q.x = r
	case q.order == 1:
		q.x += r
	default:
		q.d += r
		q.x += q.d
	}
	return q.x
}

// Time units of the T and R columns (mode bits 4-5): times that are whole
// seconds, milliseconds or microseconds (observedAt is often written so) are
// stored divided by the unit, which makes irregular times 2 to 4 bytes a
// sample cheaper.
const (
	unitNs = iota
	unitUs
	unitMs
	unitS
)

// unitNanos is the length of each unit in ns. It is a lookup table, never
// written.
var unitNanos = [4]int64{1, 1e3, 1e6, 1e9}

// coarsest returns the coarsest unit <= u that divides x. The constant
// divisors compile to multiplications.
func coarsest(x int64, u uint8) uint8 {
	for {
		switch {
		case u == unitS && x%1e9 == 0,
			u == unitMs && x%1e6 == 0,
			u == unitUs && x%1e3 == 0,
			u == unitNs:
			return u
		}
		u--
	}
}

// inUnit divides x, a multiple of unit u, by the unit.
func inUnit(x int64, u uint8) int64 {
	switch u {
	case unitUs:
		return x / 1e3
	case unitMs:
		return x / 1e6
	case unitS:
		return x / 1e9
	}
	return x
}
