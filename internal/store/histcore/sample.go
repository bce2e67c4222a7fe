// Package histcore is the pure part of the history stores, shared by the
// embedded (SQLite) and PostgreSQL backends so that both give the same
// answers: how a recorded instance becomes a tsz sample and back, instance
// ids, UTC days, the rollups retention leaves, narrowing samples to a
// temporal query before they are decoded, building the temporal entity, and
// aggregating from chunk summaries, rollups and samples. It does no I/O.
package histcore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/tsz"
)

// ErrCorrupt is returned for a stored history record or rollup that does
// not decode.
var ErrCorrupt = errors.New("corrupt history record")

// DayNS is a UTC day in ns; chunks hold one series' samples of one UTC day.
const DayNS = int64(24 * time.Hour)

// PartMax is the most samples one chunk row holds: a day of a dense series
// is stored in several parts, so no chunk outgrows what tsz encodes and a
// rewrite stays bounded.
const PartMax = 1 << 16

// The flags byte that starts a sample's Rest.
const (
	RestObserved = 1 << iota // the instance had observedAt (= T)
	RestNum                  // the value is a number, held in the sample's V
)

// SampleOf is a recorded instance as a tsz sample:
//
//	T    = observedAt, or modifiedAt when it has none (ns since the epoch)
//	R    = modifiedAt, when it was recorded; now stands in for a missing one
//	V    = the value, when it is a number (Num)
//	Rest = flags attr (codec) of the instance without what T, R and V hold
func SampleOf(a *ngsild.Attribute, now time.Time) (tsz.Sample, error) {
	s := tsz.Sample{R: unixNano(a.ModifiedAt, now)}
	var flags byte
	stripped := *a
	stripped.ModifiedAt = time.Time{}
	if !a.ObservedAt.IsZero() {
		s.T = a.ObservedAt.UnixNano()
		flags |= RestObserved
		stripped.ObservedAt = time.Time{}
	} else {
		s.T = s.R
	}
	if a.Kind == ngsild.Property {
		if f, ok := codec.ToFloat(a.Value); ok {
			s.Num, s.V = true, f
			stripped.Value = nil
			flags |= RestNum
		}
	}
	rest, err := codec.AppendAttr(append(make([]byte, 0, 32), flags), &stripped, 0)
	if err != nil {
		return tsz.Sample{}, err
	}
	s.Rest = rest
	return s, nil
}

func unixNano(t, fallback time.Time) int64 {
	if t.IsZero() {
		return fallback.UnixNano()
	}
	return t.UnixNano()
}

// AttrOf rebuilds the recorded instance a sample holds.
func AttrOf(s *tsz.Sample) (*ngsild.Attribute, error) {
	if len(s.Rest) == 0 {
		return nil, ErrCorrupt
	}
	flags := s.Rest[0]
	d := &codec.Decoder{B: s.Rest[1:]}
	a := d.Attr(0)
	if d.Err != nil || a == nil {
		return nil, ErrCorrupt
	}
	if flags&RestNum != 0 {
		a.Value = s.V
	}
	if flags&RestObserved != 0 {
		a.ObservedAt = time.Unix(0, s.T).UTC()
	}
	a.ModifiedAt = time.Unix(0, s.R).UTC()
	return a, nil
}

// Replacement is the sample of with put in the place of the recorded
// instance old of datasetId dataset (ReplaceInstance): it keeps old's time
// and recording time, hence its instance id, and observedAt when either had
// one.
func Replacement(old *tsz.Sample, dataset string, with *ngsild.Attribute) (tsz.Sample, error) {
	if len(old.Rest) == 0 {
		return tsz.Sample{}, ErrCorrupt
	}
	a := *with
	a.DatasetID = dataset
	a.ObservedAt = time.Time{}
	if !with.ObservedAt.IsZero() || old.Rest[0]&RestObserved != 0 {
		a.ObservedAt = time.Unix(0, old.T)
	}
	a.ModifiedAt = time.Unix(0, old.R)
	r, err := SampleOf(&a, time.Time{})
	if err != nil {
		return tsz.Sample{}, err
	}
	r.T = old.T
	return r, nil
}

// AppendSample appends a sample outside a chunk (a head record):
//
//	sample = varint(T) varint(R) 0x00 str(rest) | varint(T) varint(R) 0x01 float64 (8 bytes LE) str(rest)
func AppendSample(b []byte, s tsz.Sample) []byte {
	b = binary.AppendVarint(b, s.T)
	b = binary.AppendVarint(b, s.R)
	if s.Num {
		b = append(b, 1)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.V))
	} else {
		b = append(b, 0)
	}
	return codec.AppendStr(b, string(s.Rest))
}

// ReadSample reads what AppendSample wrote; on bad input d.Err is set. Rest
// aliases d's bytes.
func ReadSample(d *codec.Decoder) tsz.Sample {
	var s tsz.Sample
	s.T, s.R = d.Varint(), d.Varint()
	switch d.Byte() {
	case 0:
	case 1:
		if len(d.B) < 8 {
			d.Fail()
			return tsz.Sample{}
		}
		s.Num, s.V = true, math.Float64frombits(binary.LittleEndian.Uint64(d.B))
		d.B = d.B[8:]
	default:
		d.Fail()
		return tsz.Sample{}
	}
	s.Rest = d.Raw()
	return s
}

// SameSample reports whether two samples record the same instance at the
// same time (whenever they were recorded): an import skips those.
func SameSample(a, b *tsz.Sample) bool {
	return a.T == b.T && a.Num == b.Num && (!a.Num || a.V == b.V) && bytes.Equal(a.Rest, b.Rest)
}

// SortSamples sorts samples the way chunks hold them: by time, then
// recording time, keeping the given order otherwise.
func SortSamples(samples []tsz.Sample) {
	slices.SortStableFunc(samples, func(a, b tsz.Sample) int {
		if c := cmp.Compare(a.T, b.T); c != 0 {
			return c
		}
		return cmp.Compare(a.R, b.R)
	})
}

// InstanceID names a recorded instance by its time, its recording time and
// (for a non-default instance) a hash of its datasetId, which stay the same
// when it moves from the head into a chunk, and are the same in every
// backend: instances of several datasetIds written by one request at one
// time still have ids of their own.
func InstanceID(s *tsz.Sample, dataset string) string {
	id := "urn:ngsi-ld:Instance:" + strconv.FormatInt(s.T, 36) + "." + strconv.FormatInt(s.R, 36)
	if dataset != "" {
		h := fnv.New32a()
		h.Write([]byte(dataset))
		id += "." + strconv.FormatUint(uint64(h.Sum32()), 36)
	}
	return id
}

// ParseInstanceID reads the time and recording time of an InstanceID.
func ParseInstanceID(id string) (t, r int64, ok bool) {
	rest, found := strings.CutPrefix(id, "urn:ngsi-ld:Instance:")
	if !found {
		return 0, 0, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, false
	}
	t, err1 := strconv.ParseInt(parts[0], 36, 64)
	r, err2 := strconv.ParseInt(parts[1], 36, 64)
	return t, r, err1 == nil && err2 == nil
}

// DayOf is the UTC day (days since the epoch) of a time in ns.
func DayOf(ns int64) int64 {
	d := ns / DayNS
	if ns%DayNS < 0 {
		d--
	}
	return d
}

// HourOf is the UTC hour of day (0-23) of a time in ns.
func HourOf(ns int64) int { return int((ns%DayNS + DayNS) % DayNS / int64(time.Hour)) }
