package main

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

// The data set: sensors of one entity type (Sensor), each reporting one
// attribute every period, of three kinds in turn:
//
//   - energy: a meter's cumulative kWh, 3 decimals, growing by what a
//     building uses (more by day, less at night and at weekends);
//   - temperature: °C, 1 decimal, a seasonal and daily cycle with noise;
//   - flow: m³/h of water, 2 decimals, zero most of the night.
//
// Rows are in time order (every sensor's reading at t, then at t+period),
// as an export from a running system is; -order sensor writes each
// sensor's whole series in turn.

var start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// sensorID is the id of sensor i.
func sensorID(i int) string {
	return fmt.Sprintf("urn:ngsi-ld:Sensor:%s-%04d", kinds[i%len(kinds)].attr, i)
}

type kind struct {
	attr, unit string
	decimals   int
}

var kinds = []kind{{"energy", "KWH", 3}, {"temperature", "CEL", 1}, {"flow", "MQH", 2}}

// sensor generates one sensor's readings.
type sensor struct {
	i     int
	k     kind
	id    []byte // "id,attr," prefix of its rows
	unit  []byte // ",unit\n"
	rng   *rand.Rand
	total float64 // energy: the meter's reading
	base  float64 // its scale
}

func newSensor(i int) *sensor {
	k := kinds[i%len(kinds)]
	s := &sensor{i: i, k: k, rng: rand.New(rand.NewPCG(uint64(i), 42))}
	s.id = []byte(sensorID(i) + "," + k.attr + ",")
	s.unit = []byte("," + k.unit + "\n")
	s.base = 0.5 + s.rng.Float64()*2
	s.total = float64(s.rng.IntN(100000))
	return s
}

// value is the reading at t.
func (s *sensor) value(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	day := float64(t.YearDay())
	switch s.k.attr {
	case "energy":
		use := s.base * (0.2 + 0.8*math.Max(0, math.Sin((h-6)/12*math.Pi)))
		if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
			use *= 0.4
		}
		s.total += use * (0.8 + 0.4*s.rng.Float64()) / 4
		return s.total
	case "temperature":
		season := 11 - 8*math.Cos((day-20)/365*2*math.Pi)
		daily := 4 * math.Sin((h-9)/24*2*math.Pi)
		return season + daily + s.rng.NormFloat64()*0.3 + s.base
	default: // flow
		if h < 5 || h >= 23 {
			if s.rng.IntN(20) != 0 {
				return 0
			}
		}
		return s.base * (0.5 + s.rng.Float64()) * (1 + math.Sin(h/24*math.Pi))
	}
}

// appendRow appends the row of sensor s at t.
func (s *sensor) appendRow(b []byte, t time.Time, stamp []byte) []byte {
	b = append(b, s.id...)
	b = append(b, stamp...)
	b = append(b, ',')
	v := s.value(t)
	p := math.Pow10(s.k.decimals)
	b = strconv.AppendFloat(b, math.Round(v*p)/p, 'f', -1, 64)
	return append(b, s.unit...)
}

// generate writes the data set to path and returns its rows.
func generate(path string, sensors int, days int, every time.Duration, bySensor bool) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 4<<20)
	w.WriteString("entityId,attribute,time,value,unit\n")
	steps := int(time.Duration(days) * 24 * time.Hour / every)
	ss := make([]*sensor, sensors)
	for i := range ss {
		ss[i] = newSensor(i)
	}
	var rows int64
	buf := make([]byte, 0, 1<<16)
	stampOf := func(t time.Time) []byte { return t.AppendFormat(nil, time.RFC3339) }
	if bySensor {
		for _, s := range ss {
			for j := range steps {
				t := start.Add(time.Duration(j) * every)
				buf = s.appendRow(buf, t, stampOf(t))
				if len(buf) > 60000 {
					w.Write(buf)
					buf = buf[:0]
				}
				rows++
			}
		}
	} else {
		for j := range steps {
			t := start.Add(time.Duration(j) * every)
			stamp := stampOf(t)
			for _, s := range ss {
				buf = s.appendRow(buf, t, stamp)
				if len(buf) > 60000 {
					w.Write(buf)
					buf = buf[:0]
				}
				rows++
			}
		}
	}
	w.Write(buf)
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return rows, f.Close()
}
