package tsz

import (
	"math"
	"math/rand/v2"
	"time"
)

// Synthetic but realistic series for the compression tests, benchmarks and
// fuzz seeds: a year of 15-minute readings from 2024-01-01 UTC.

const (
	step    = int64(15 * time.Minute)
	perDay  = 96
	perYear = 365 * perDay // 35,040
)

var yearStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// importedAt is the R of imported data: one instant for the whole import.
var importedAt = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC).UnixNano()

// unitRest stands for the rest of an attribute instance that does not
// change from reading to reading (type, unitCode, metadata), 20 bytes.
var unitRest = []byte("\x01\x07unitCode\x03CEL\x00\x00\x00\x00\x00\x00")

type series struct {
	name string
	v    func(r *rand.Rand, i int) float64 // value of reading i, called in order
}

func hourOf(i int) float64 { return float64(i%perDay) / 4 }
func dayOf(i int) float64  { return float64(i / perDay) }

// realisticSeries returns the four series of the brief: (a) temperature with
// one decimal, (b) a cumulative energy meter in kWh with 3 decimals, (c) a
// water flow with zeros at night, (d) full-precision floats.
func realisticSeries() []series {
	var noise float64 // AR(1) weather noise for (a)
	var wh int64      // meter total for (b), in Wh
	return []series{
		{"temperature", func(r *rand.Rand, i int) float64 {
			noise = 0.97*noise + 0.15*r.NormFloat64()
			x := 10 - 9*math.Cos(2*math.Pi*(dayOf(i)-20)/365) + 4*math.Sin(2*math.Pi*(hourOf(i)-9)/24) + noise
			v := math.Round(x*10) / 10
			if v == 0 {
				v = 0 // a sensor says 0, not -0 (which would force xor)
			}
			return v
		}},
		{"energy", func(r *rand.Rand, i int) float64 {
			if i == 0 {
				wh = 12_345_678
			}
			h := hourOf(i)
			load := 60.0 // standby, Wh per quarter hour
			if h >= 7 && h < 22 {
				load += 150 + 100*r.Float64()
			}
			if r.IntN(20) == 0 {
				load += 500 // kettle, oven...
			}
			wh += int64(load + 20*r.Float64())
			return float64(wh) / 1000
		}},
		{"waterflow", func(r *rand.Rand, i int) float64 {
			h := hourOf(i)
			if h < 6 || h >= 23 || r.IntN(10) < 4 {
				return 0
			}
			return float64(5+r.IntN(200)) / 10 // litres per minute, one decimal
		}},
		{"float", func(r *rand.Rand, i int) float64 {
			return 20 + 5*math.Sin(2*math.Pi*hourOf(i)/24) + r.NormFloat64()
		}},
	}
}

// yearOf builds the samples of a series; live means R = T + jitter
// (0.05 s to 2 s, ns resolution), otherwise R is the import time.
func yearOf(sr series, live bool, seed uint64) []Sample {
	r := rand.New(rand.NewPCG(seed, 42))
	s := make([]Sample, perYear)
	for i := range s {
		t := yearStart + int64(i)*step
		rec := importedAt
		if live {
			rec = t + int64(50*time.Millisecond) + r.Int64N(int64(1950*time.Millisecond))
		}
		s[i] = Sample{T: t, R: rec, Num: true, V: sr.v(r, i), Rest: unitRest}
	}
	return s
}

// chunks splits s into chunks of size samples.
func chunks(s []Sample, size int) [][]Sample {
	var out [][]Sample
	for len(s) > 0 {
		k := min(size, len(s))
		out = append(out, s[:k])
		s = s[k:]
	}
	return out
}
