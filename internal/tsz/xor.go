package tsz

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// The xor value encoding (Gorilla, Pelkonen et al., VLDB 2015): exact for
// every float64 bit pattern, used when values are not short decimals.

// bitWriter appends bits, most significant first, to b.
type bitWriter struct {
	b   []byte
	acc uint64 // the low n bits are pending
	n   uint   // < 8 between calls
}

// write appends the low nb bits of v; nb <= 56.
func (w *bitWriter) write(v uint64, nb uint) {
	w.acc = w.acc<<nb | v&(1<<nb-1)
	w.n += nb
	for w.n >= 8 {
		w.n -= 8
		w.b = append(w.b, byte(w.acc>>w.n))
	}
}

func (w *bitWriter) write64(v uint64, nb uint) {
	if nb > 32 {
		w.write(v>>32, nb-32)
		nb = 32
	}
	w.write(v, nb)
}

// finish pads the last byte with zero bits.
func (w *bitWriter) finish() []byte {
	if w.n > 0 {
		w.b = append(w.b, byte(w.acc<<(8-w.n)))
		w.n = 0
	}
	return w.b
}

// bitReader reads bits written by bitWriter; pos counts bits.
type bitReader struct {
	b   []byte
	pos uint
	err error
}

// read returns the next nb bits; nb <= 56.
func (r *bitReader) read(nb uint) uint64 {
	i := r.pos >> 3
	if i+8 <= uint(len(r.b)) {
		w := binary.BigEndian.Uint64(r.b[i:]) << (r.pos & 7)
		r.pos += nb
		return w >> (64 - nb) // nb == 0 reads 0: Go shifts by >= 64 give 0
	}
	return r.readSlow(nb)
}

func (r *bitReader) readSlow(nb uint) uint64 {
	if r.pos+nb > uint(len(r.b))*8 {
		if r.err == nil {
			r.err = errTruncated
		}
		r.pos = uint(len(r.b)) * 8
		return 0
	}
	// Fewer than 8 bytes left: load them as the top of a word.
	var w uint64
	for j, c := range r.b[r.pos>>3:] {
		w |= uint64(c) << (56 - 8*j)
	}
	w <<= r.pos & 7
	r.pos += nb
	return w >> (64 - nb)
}

func (r *bitReader) read64(nb uint) uint64 {
	if nb > 32 {
		hi := r.read(nb - 32)
		return hi<<32 | r.read(32)
	}
	return r.read(nb)
}

// appendXor encodes the values of the numeric samples.
func appendXor(dst []byte, s []Sample) []byte {
	w := bitWriter{b: dst}
	var prev uint64
	first := true
	lead, trail := uint(0), uint(0) // current window; sig == 0 means none yet
	sig := uint(0)
	for i := range s {
		if !s[i].Num {
			continue
		}
		v := math.Float64bits(s[i].V)
		if first {
			first = false
			w.write64(v, 64)
			prev = v
			continue
		}
		x := v ^ prev
		prev = v
		if x == 0 {
			w.write(0, 1)
			continue
		}
		l, t := uint(bits.LeadingZeros64(x)), uint(bits.TrailingZeros64(x))
		if sig != 0 && l >= lead && t >= trail {
			w.write(0b10, 2)
			w.write64(x>>trail, sig)
			continue
		}
		l = min(l, 31)
		lead, trail, sig = l, t, 64-l-t
		w.write(0b11<<11|uint64(l)<<6|uint64(sig&63), 13)
		w.write64(x>>t, sig)
	}
	return w.finish()
}

// xorReader reads the values of an xor column one by one.
type xorReader struct {
	r         bitReader
	v         uint64
	started   bool
	lead, sig uint // the current window; sig == 0 before the first
}

func newXorReader(b []byte, pos int) xorReader {
	return xorReader{r: bitReader{b: b, pos: uint(pos) * 8}}
}

// next returns the next value's bits; errors are sticky in x.r.err.
func (x *xorReader) next() uint64 {
	r := &x.r
	switch {
	case !x.started:
		x.started = true
		x.v = r.read64(64)
	case r.read(1) == 0:
	default:
		if r.read(1) == 1 {
			h := r.read(11)
			x.lead, x.sig = uint(h>>6), uint(h&63)
			if x.sig == 0 {
				x.sig = 64
			}
		}
		if x.sig == 0 || x.lead+x.sig > 64 {
			if r.err == nil {
				r.err = errBadWindow
			}
			return 0
		}
		x.v ^= r.read64(x.sig) << (64 - x.lead - x.sig)
	}
	return x.v
}

// end returns the position after the column (whole bytes).
func (x *xorReader) end() (int, error) {
	return int((x.r.pos + 7) / 8), x.r.err
}

// decodeXor reads the values of the numeric samples of s from b[pos:] and
// returns the position after the column.
func decodeXor(b []byte, pos int, s []Sample) (int, error) {
	x := newXorReader(b, pos)
	for i := range s {
		if s[i].Num {
			s[i].V = math.Float64frombits(x.next())
		}
	}
	return x.end()
}
