package tsz

import (
	"math"
	"math/bits"
)

// The V column: values that are short decimals, as sensors report them,
// become small integers k with v == float64(k)/10^d; anything else is
// stored by xor (xor.go).

// pow10 holds the decimal scales 10^0..10^9, all exact in float64.
// It is a lookup table, never written.
var pow10 = [maxDecimals + 1]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

const maxDecimals = 9

// decimal returns k with v == float64(k)/10^d bit for bit, if there is one
// with |k| < 2^53. It uses the very division the decoder uses, so "ok" means
// the round trip is exact; -0, NaN and ±Inf are never ok.
func decimal(v float64, d int) (int64, bool) {
	p := pow10[d]
	f := math.Round(v * p)
	if !(math.Abs(f) < 1<<53) {
		return 0, false
	}
	k := int64(f)
	return k, math.Float64bits(float64(k)/p) == math.Float64bits(v)
}

// valuePlan is how the V column will be written, decided before the
// header so that the header can store Min and Max as decimals too.
type valuePlan struct {
	decimal bool
	d       int  // decimals
	mode    byte // decimal stream mode (order, packed)
	size    int  // decimal stream size in bytes
	xorMin  int  // a lower bound of the xor column size in bytes
}

// planValues measures the decimal encodings (orders 0, 1, 2 in both
// formats) at the fewest decimals d <= 9 that make every value exact, and a
// lower bound of the xor encoding. Order 0 suits spiky series (zeros and
// bursts), orders 1 and 2 smooth ones.
func planValues(s []Sample) valuePlan {
	for d := 0; d <= maxDecimals; {
		p, need := measureDecimal(s, d)
		if need == d {
			return p
		}
		d = need // a value needs more decimals: start over
	}
	return valuePlan{}
}

// measureDecimal measures the decimal encodings at d decimals. If a value is
// not exact at d it stops and returns the decimals that value needs (10 if
// none).
func measureDecimal(s []Sample, d int) (valuePlan, int) {
	var (
		qs    = [3]seq{{order: 0}, {order: 1}, {order: 2}}
		cost  = [3]intCost{{head: 0}, {head: 1}, {head: 2}}
		xbits = 0 // xor: 64 bits, then 1 bit per unchanged value or 2 and the XOR's meaningful bits
		prev  uint64
		first = true
	)
	for i := range s {
		if !s[i].Num {
			continue
		}
		k, ok := decimal(s[i].V, d)
		if !ok {
			for need := d + 1; need <= maxDecimals; need++ {
				if _, ok := decimal(s[i].V, need); ok {
					return valuePlan{}, need
				}
			}
			return valuePlan{}, maxDecimals + 1
		}
		for j := range qs {
			cost[j].add(qs[j].residual(k))
		}
		v := math.Float64bits(s[i].V)
		if x := v ^ prev; first {
			xbits, first = 64, false
		} else if x == 0 {
			xbits++
		} else {
			xbits += 2 + 64 - bits.LeadingZeros64(x) - bits.TrailingZeros64(x)
		}
		prev = v
	}
	var c choice
	for j := range qs {
		c.consider(&cost[j], byte(j))
	}
	return valuePlan{decimal: true, d: d, mode: c.mode, size: c.size, xorMin: (xbits + 7) / 8}, d
}

// appendValues writes the V column: decimal if planned and no larger than
// xor, else xor.
func appendValues(dst []byte, s []Sample, p valuePlan) []byte {
	if !p.decimal {
		return appendXor(append(dst, modeXor), s)
	}
	start := len(dst)
	dst = append(dst, byte(p.d)<<4|p.mode)
	q := seq{order: p.mode & modeOrder}
	w := newIntWriter(dst, p.mode&modePacked != 0, int(q.order))
	scale := pow10[p.d]
	for i := range s {
		if s[i].Num {
			// Checked exact by measureDecimal; skip the division this time.
			w.put(q.residual(int64(math.Round(s[i].V * scale))))
		}
	}
	dst = w.finish()
	dec := len(dst) - start
	if p.xorMin >= p.size {
		return dst // xor cannot be smaller
	}
	dst = appendXor(append(dst, modeXor), s)
	if xor := len(dst) - start - dec; xor < dec {
		copy(dst[start:], dst[start+dec:])
		return dst[:start+xor]
	}
	return dst[:start+dec]
}

// valuesMode parses the V column's mode byte at b[pos].
func valuesMode(b []byte, pos int) (byte, error) {
	if pos >= len(b) {
		return 0, errTruncated
	}
	mode := b[pos]
	if mode != modeXor && (mode>>4 > maxDecimals || mode&modeRelative != 0 || mode&modeOrder == 3) {
		return 0, corrupt("bad value mode")
	}
	return mode, nil
}

func decodeValues(b []byte, pos int, s []Sample, numN int) (int, error) {
	mode, err := valuesMode(b, pos)
	if err != nil {
		return 0, err
	}
	pos++
	if mode == modeXor {
		return decodeXor(b, pos, s)
	}
	p := pow10[mode>>4]
	q := seq{order: mode & modeOrder}
	rd := newIntReader(b, pos, mode&modePacked != 0, int(q.order), numN)
	for i := range s {
		if s[i].Num {
			s[i].V = float64(q.value(rd.next())) / p
		}
	}
	if err := rd.done(); err != nil {
		return 0, err
	}
	return rd.pos, nil
}

// skipValues walks the V column of numN values without storing them.
func skipValues(b []byte, pos int, numN int) (int, error) {
	mode, err := valuesMode(b, pos)
	if err != nil {
		return 0, err
	}
	pos++
	if mode == modeXor {
		x := newXorReader(b, pos)
		for range numN {
			x.next()
		}
		return x.end()
	}
	rd := newIntReader(b, pos, mode&modePacked != 0, int(mode&modeOrder), numN)
	for range numN {
		rd.next()
	}
	return rd.pos, rd.done()
}
