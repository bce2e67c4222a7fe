package temporal

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// The aggregated temporal representation (4.5.19): aggrMethods applied to
// the instances of each attribute over periods of aggrPeriodDuration.
//
// Readings taken where the specification leaves room:
//
//   - stddev is the population standard deviation (divide by n). The
//     specification says "the standard deviation of the values inside the
//     period": those values are the whole population of the period, not a
//     sample of a larger one, and a period of one value then has a deviation
//     of 0 instead of none. The aggregation by Orion-LD's author (Seamware's
//     ldToAggregatedValues.c) does the same; Stellio uses PostgreSQL's
//     stddev_samp (divide by n-1).
//   - Values follow tables 4.5.19.1-1 to -3 by JSON type: numbers and
//     booleans (true 1, false 0) take every method; strings take min/max
//     in lexicographic order; arrays take avg/sum/min/max of their sizes;
//     objects only the counts; DateTime and Date values ({"@type":
//     "DateTime", "@value": ...}) min/max, Time values min/max/avg;
//     Relationships, ListRelationships, GeoProperties, LanguageProperties,
//     JsonProperties and VocabProperties only the counts. A method that does
//     not apply gives null. A period mixing types is not mixed up: min/max,
//     sum and avg use the first type present in the order numbers,
//     array sizes, DateTime, Date, Time, strings; stddev and sumsq use
//     numbers only.
//   - totalCount counts instances with a value; deletion markers (null or
//     urn:ngsi-ld:null) are not counted, since they carry no value to
//     aggregate.
//   - Empty periods are left out. The text says "as many array elements as
//     there are periods in the time range of the query", but annex C.5.14
//     answers a one-hour query with PT4M periods with only the two periods
//     that hold data, and Stellio (GROUP BY time_bucket) and Seamware's
//     implementation do the same. Every element carries its period's start
//     and end, so a client sees which periods are missing.

// Method is an aggregation method (aggrMethods).
type Method string

const (
	TotalCount    Method = "totalCount"
	DistinctCount Method = "distinctCount"
	Sum           Method = "sum"
	Avg           Method = "avg"
	Min           Method = "min"
	Max           Method = "max"
	StdDev        Method = "stddev"
	SumSq         Method = "sumsq"
)

// allMethods are the aggregation methods, in the order error messages list
// them.
var allMethods = []Method{TotalCount, DistinctCount, Sum, Avg, Min, Max, StdDev, SumSq}

const methodList = "totalCount, distinctCount, sum, avg, min, max, stddev or sumsq"

// ParseMethods parses aggrMethods: a comma-separated list of methods, in
// the order given, duplicates dropped. An empty list is an error because
// the aggregated representation needs at least one method (5.2.21: aggrMethods
// is mandatory with aggregatedValues). Errors are BadRequestData naming the
// bad method and listing the valid ones.
func ParseMethods(s string) ([]Method, error) {
	if strings.TrimSpace(s) == "" {
		return nil, ngsild.Errorf(ngsild.BadRequestData, "aggrMethods is missing: aggregatedValues needs one or more of %s, comma-separated", methodList)
	}
	var out []Method
	for _, part := range strings.Split(s, ",") {
		m := Method(strings.TrimSpace(part))
		if m == "" {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "aggrMethods %q has an empty method: send a comma-separated list of %s", s, methodList)
		}
		if !slices.Contains(allMethods, m) {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "aggrMethods: %q is not an aggregation method: send %s", string(m), methodList)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// Aggregation is what an aggregatedValues request asks for: the methods
// and the period duration (zero: one period over the whole time range).
type Aggregation struct {
	Methods []Method
	Period  Duration
}

// ParseAggregation reads the URL parameters aggrMethods (required) and
// aggrPeriodDuration (optional, default PT0S). Call it only when the
// aggregated representation is asked for (the parameters are "only
// applicable if aggregatedValues is present").
func ParseAggregation(get func(key string) string) (Aggregation, error) {
	return parseAggregation(get("aggrMethods"), get("aggrPeriodDuration"), "")
}

// ParseTemporalQAggregation reads aggrMethods (a comma-separated string, or
// an array of method strings) and aggrPeriodDuration from the temporalQ
// member of a POST /temporal/entityOperations/query body.
func ParseTemporalQAggregation(m map[string]any) (Aggregation, error) {
	var methods string
	switch v := m["aggrMethods"].(type) {
	case nil:
	case string:
		methods = v
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			s, ok := x.(string)
			if !ok || strings.Contains(s, ",") {
				return Aggregation{}, ngsild.Errorf(ngsild.BadRequestData, "temporalQ.aggrMethods must hold method names (%s), not %s", methodList, ngsild.JSONKind(x))
			}
			parts[i] = s
		}
		methods = strings.Join(parts, ",")
	default:
		return Aggregation{}, ngsild.Errorf(ngsild.BadRequestData, "temporalQ.aggrMethods must be a list of methods (%s), not %s", methodList, ngsild.JSONKind(v))
	}
	period, err := memberString(m, "aggrPeriodDuration")
	if err != nil {
		return Aggregation{}, err
	}
	return parseAggregation(methods, period, "temporalQ.")
}

func parseAggregation(methods, period, prefix string) (Aggregation, error) {
	ms, err := ParseMethods(methods)
	if err != nil {
		e := err.(*ngsild.Error)
		return Aggregation{}, ngsild.Errorf(e.Type, "%s%s", prefix, e.Detail)
	}
	a := Aggregation{Methods: ms}
	if period != "" {
		if a.Period, err = ParseDuration(period); err != nil {
			e := err.(*ngsild.Error)
			return Aggregation{}, ngsild.Errorf(e.Type, "%saggrPeriodDuration %s", prefix, e.Detail)
		}
	}
	return a, nil
}

// Acc accumulates the values of one attribute instance series over one
// period, for every method at once. Two Accs merge exactly (Merge), so a
// store can keep pre-aggregated rollups and combine them. The zero Acc is
// empty and tracks distinct values.
type Acc struct {
	count int64 // values added: totalCount

	// Numbers and booleans (true 1, false 0).
	n                    int64
	sum, sumsq, min, max float64
	mean, m2             float64 // Welford's running mean and sum of squared deviations, for a stable stddev

	// Sizes of arrays.
	an               int64
	asum, amin, amax float64

	// Strings, in lexicographic (byte) order.
	sn         int64
	smin, smax string

	// JSON-LD typed values, ordered in time; Time values are also averaged.
	dateTime, date, timeOfDay ordered
	todSum                    float64 // seconds of day of the Time values

	distinct   map[string]struct{} // canonical JSON of each distinct value
	noDistinct bool                // distinct values are not known: distinctCount is null
}

// ordered accumulates values ordered by a time key, keeping the original
// value of the least and greatest.
type ordered struct {
	n          int64
	min, max   time.Time
	minV, maxV any
}

func (o *ordered) add(t time.Time, v any) {
	if o.n == 0 || t.Before(o.min) {
		o.min, o.minV = t, v
	}
	if o.n == 0 || t.After(o.max) {
		o.max, o.maxV = t, v
	}
	o.n++
}

func (o *ordered) merge(p *ordered) {
	if p.n == 0 {
		return
	}
	if o.n == 0 || p.min.Before(o.min) {
		o.min, o.minV = p.min, p.minV
	}
	if o.n == 0 || p.max.After(o.max) {
		o.max, o.maxV = p.max, p.maxV
	}
	o.n += p.n
}

// NumericAcc is an Acc built from a numeric rollup of n values: their sum,
// sum of squares, minimum and maximum. Its distinct values are unknown, so
// Value(DistinctCount) is null: stores must not answer distinctCount from
// rollups, only from raw instances. stddev from a rollup is computed from
// sumsq - sum²/n, which loses precision when the values are large and
// close together; keep raw instances where that matters.
func NumericAcc(n int, sum, sumsq, min, max float64) Acc {
	a := Acc{noDistinct: true}
	if n <= 0 {
		return a
	}
	a.count, a.n = int64(n), int64(n)
	a.sum, a.sumsq, a.min, a.max = sum, sumsq, min, max
	a.mean = sum / float64(n)
	a.m2 = math.Max(0, sumsq-sum*sum/float64(n))
	return a
}

// valueClass is the JSON type of a value, as the aggregation tables see it.
type valueClass int

const (
	classNull valueClass = iota // no value (deletion marker): not aggregated
	classNumber
	classBool
	classString
	classArray
	classObject // objects and anything else: counted only
	classDateTime
	classDate
	classTime
)

// classify returns v's class, its numeric value (numbers, booleans, array
// sizes) and its time key (DateTime, Date, Time).
func classify(v any) (valueClass, float64, time.Time) {
	switch x := v.(type) {
	case nil, ngsild.Null:
		return classNull, 0, time.Time{}
	case bool:
		if x {
			return classBool, 1, time.Time{}
		}
		return classBool, 0, time.Time{}
	case float64:
		return number(x)
	case float32:
		return number(float64(x))
	case int:
		return classNumber, float64(x), time.Time{}
	case int64:
		return classNumber, float64(x), time.Time{}
	case int32:
		return classNumber, float64(x), time.Time{}
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return classObject, 0, time.Time{}
		}
		return number(f)
	case string:
		if x == ngsild.NullURI {
			return classNull, 0, time.Time{}
		}
		return classString, 0, time.Time{}
	case []any:
		return classArray, float64(len(x)), time.Time{}
	case map[string]any:
		return typedValue(x)
	}
	return classObject, 0, time.Time{}
}

func number(f float64) (valueClass, float64, time.Time) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return classObject, 0, time.Time{}
	}
	return classNumber, f, time.Time{}
}

// typedValue recognises JSON-LD value objects of the NGSI-LD temporal types
// ({"@type": "DateTime", "@value": "2024-01-31T12:00:00Z"}, also with the
// type expanded or prefixed); anything else is an object.
func typedValue(m map[string]any) (valueClass, float64, time.Time) {
	typ, _ := m["@type"].(string)
	val, ok := m["@value"].(string)
	if !ok || typ == "" {
		return classObject, 0, time.Time{}
	}
	typ = strings.TrimPrefix(strings.TrimPrefix(typ, ngsild.CoreNS), "ngsi-ld:")
	switch typ {
	case "DateTime":
		if t, err := ngsild.ParseTime(val); err == nil {
			return classDateTime, 0, t
		}
	case "Date":
		if t, err := time.Parse("2006-01-02", val); err == nil {
			return classDate, 0, t
		}
	case "Time":
		if t, ok := parseTimeOfDay(val); ok {
			return classTime, 0, t
		}
	}
	return classObject, 0, time.Time{}
}

// parseTimeOfDay parses an ISO 8601 time (12:00:00, with optional
// fraction and offset; no offset is UTC) as a time on 1 January of year 0
// in UTC.
func parseTimeOfDay(s string) (time.Time, bool) {
	for _, layout := range []string{"15:04:05Z07:00", "15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			return time.Date(0, 1, 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC), true
		}
	}
	return time.Time{}, false
}

// Add adds one Property value (a decoded JSON value: float64, string,
// bool, map[string]any, []any; int, int64 and json.Number are numbers too).
// null and urn:ngsi-ld:null are skipped.
func (a *Acc) Add(v any) {
	c, f, t := classify(v)
	if c == classNull {
		return
	}
	a.count++
	a.addDistinct(c, f, v)
	switch c {
	case classNumber, classBool:
		a.addNumber(f)
	case classArray:
		if a.an == 0 || f < a.amin {
			a.amin = f
		}
		if a.an == 0 || f > a.amax {
			a.amax = f
		}
		a.an++
		a.asum += f
	case classString:
		s := v.(string)
		if a.sn == 0 || s < a.smin {
			a.smin = s
		}
		if a.sn == 0 || s > a.smax {
			a.smax = s
		}
		a.sn++
	case classDateTime:
		a.dateTime.add(t, v)
	case classDate:
		a.date.add(t, v)
	case classTime:
		a.timeOfDay.add(t, v)
		a.todSum += float64(t.Hour()*3600+t.Minute()*60+t.Second()) + float64(t.Nanosecond())/1e9
	}
}

// AddAttribute adds one attribute instance's value as table 4.5.19.1-1 to
// -3 treat its kind: Properties and ListProperties by their JSON value,
// every other kind (Relationship targets, geometries, language maps, JSON,
// vocabularies) for totalCount and distinctCount only.
func (a *Acc) AddAttribute(attr *ngsild.Attribute) {
	switch attr.Kind {
	case ngsild.Property, ngsild.ListProperty, "":
		a.Add(attr.Value)
		return
	}
	c, f, _ := classify(attr.Value)
	if c == classNull {
		return
	}
	a.count++
	a.addDistinct(c, f, attr.Value)
}

func (a *Acc) addNumber(x float64) {
	if a.n == 0 || x < a.min {
		a.min = x
	}
	if a.n == 0 || x > a.max {
		a.max = x
	}
	a.n++
	a.sum += x
	a.sumsq += x * x
	d := x - a.mean
	a.mean += d / float64(a.n)
	a.m2 += d * (x - a.mean)
}

// addDistinct records v's canonical JSON (numbers by their float64 value, so
// 1 and 1.0 are one value; objects with sorted keys).
func (a *Acc) addDistinct(c valueClass, f float64, v any) {
	if a.noDistinct {
		return
	}
	var key []byte
	var err error
	switch c {
	case classNumber:
		key, err = ngsild.Marshal(f)
	default:
		key, err = ngsild.Marshal(v)
	}
	if err != nil {
		key = fmt.Appendf(nil, "%T:%v", v, v)
	}
	if a.distinct == nil {
		a.distinct = map[string]struct{}{}
	}
	a.distinct[string(key)] = struct{}{}
}

// Merge adds o's values to a, exactly as if they had been added to a one
// by one (up to floating-point rounding of sums). If either side does not
// know its distinct values, the result does not either.
func (a *Acc) Merge(o *Acc) {
	a.count += o.count
	if o.n > 0 {
		if a.n == 0 {
			a.min, a.max, a.mean, a.m2 = o.min, o.max, o.mean, o.m2
		} else {
			a.min, a.max = math.Min(a.min, o.min), math.Max(a.max, o.max)
			// Chan et al.'s parallel combination of mean and m2.
			n := float64(a.n + o.n)
			d := o.mean - a.mean
			a.m2 += o.m2 + d*d*float64(a.n)*float64(o.n)/n
			a.mean += d * float64(o.n) / n
		}
		a.n += o.n
		a.sum += o.sum
		a.sumsq += o.sumsq
	}
	if o.an > 0 {
		if a.an == 0 {
			a.amin, a.amax = o.amin, o.amax
		} else {
			a.amin, a.amax = math.Min(a.amin, o.amin), math.Max(a.amax, o.amax)
		}
		a.an += o.an
		a.asum += o.asum
	}
	if o.sn > 0 {
		if a.sn == 0 || o.smin < a.smin {
			a.smin = o.smin
		}
		if a.sn == 0 || o.smax > a.smax {
			a.smax = o.smax
		}
		a.sn += o.sn
	}
	a.dateTime.merge(&o.dateTime)
	a.date.merge(&o.date)
	a.timeOfDay.merge(&o.timeOfDay)
	a.todSum += o.todSum
	if a.noDistinct || o.noDistinct {
		a.noDistinct, a.distinct = true, nil
		return
	}
	if len(o.distinct) > 0 && a.distinct == nil {
		a.distinct = make(map[string]struct{}, len(o.distinct))
	}
	for k := range o.distinct {
		a.distinct[k] = struct{}{}
	}
}

// Value is the result of method m over the values added: an int64 for the
// counts, a float64 for numeric results, the original value for min and max
// of strings and typed values, and nil where the method does not apply to
// the values (avg of strings, anything of no values, distinctCount of a
// rollup).
func (a *Acc) Value(m Method) any {
	switch m {
	case TotalCount:
		return a.count
	case DistinctCount:
		if a.noDistinct {
			return nil
		}
		return int64(len(a.distinct))
	case Sum:
		switch {
		case a.n > 0:
			return a.sum
		case a.an > 0:
			return a.asum
		}
	case Avg:
		switch {
		case a.n > 0:
			return a.sum / float64(a.n)
		case a.an > 0:
			return a.asum / float64(a.an)
		case a.timeOfDay.n > 0:
			secs := a.todSum / float64(a.timeOfDay.n)
			t := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(math.Round(secs*1e3)) * time.Millisecond)
			return map[string]any{"@type": "Time", "@value": t.Format("15:04:05.000Z")}
		}
	case Min, Max:
		lo := m == Min
		switch {
		case a.n > 0:
			return pick(lo, a.min, a.max)
		case a.an > 0:
			return pick(lo, a.amin, a.amax)
		case a.dateTime.n > 0:
			return pick(lo, a.dateTime.minV, a.dateTime.maxV)
		case a.date.n > 0:
			return pick(lo, a.date.minV, a.date.maxV)
		case a.timeOfDay.n > 0:
			return pick(lo, a.timeOfDay.minV, a.timeOfDay.maxV)
		case a.sn > 0:
			return pick(lo, a.smin, a.smax)
		}
	case StdDev:
		if a.n > 0 {
			return math.Sqrt(math.Max(0, a.m2) / float64(a.n))
		}
	case SumSq:
		if a.n > 0 {
			return a.sumsq
		}
	}
	return nil
}

func pick[T any](least bool, lo, hi T) any {
	if least {
		return lo
	}
	return hi
}

// Eligible reports whether method m applies to an attribute instance's
// value under tables 4.5.19.1-1 to -3. A deletion marker (no value) is
// eligible for everything: it is simply not aggregated.
func Eligible(a *ngsild.Attribute, m Method) bool {
	if m == TotalCount || m == DistinctCount {
		return true
	}
	c, _, _ := classify(a.Value)
	if c == classNull {
		return true
	}
	switch a.Kind {
	case ngsild.Property, ngsild.ListProperty, "":
	default:
		return false
	}
	switch c {
	case classNumber, classBool:
		return true
	case classArray:
		return m == Avg || m == Sum || m == Min || m == Max
	case classString, classDateTime, classDate:
		return m == Min || m == Max
	case classTime:
		return m == Min || m == Max || m == Avg
	}
	return false
}

// CheckEligible returns InvalidRequest when a method does not apply to an
// instance of an attribute of e (5.7.4.4: "If an aggregated temporal
// representation is requested and any of the requested Attributes is not
// eligible for at least one of the aggregation methods specified in the
// request parameters, then an error of type InvalidRequest shall be
// raised"). c compacts attribute names for the detail (nil: expanded names).
// Whether to call it is the caller's choice: without it, methods that do not
// apply answer null.
func CheckEligible(e *Entity, methods []Method, c ngsild.Compactor) error {
	for _, n := range slices.Sorted(maps.Keys(e.Attrs)) {
		for _, in := range e.Attrs[n] {
			for _, m := range methods {
				if !Eligible(in.Attr, m) {
					return ngsild.Errorf(ngsild.InvalidRequest,
						"aggrMethods %s does not apply to attribute %s (a %s holding %s): drop %s or leave %s out of attrs",
						m, compactIRI(c, n), in.Attr.Kind, describe(in.Attr.Value), m, compactIRI(c, n))
				}
			}
		}
	}
	return nil
}

func describe(v any) string {
	switch c, _, _ := classify(v); c {
	case classDateTime:
		return "a DateTime"
	case classDate:
		return "a Date"
	case classTime:
		return "a Time"
	}
	return ngsild.JSONKind(v)
}

// Period is one aggregation period, [Start, End).
type Period struct{ Start, End time.Time }

// Periods splits [from, to) into consecutive periods of d starting at from,
// the last one cut at to; a zero d gives the one period [from, to). Nothing
// when from is not before to. The k-th period starts at from + k×d computed
// from from (see Duration.AddTo), so monthly periods from 31 January start on
// 29 February and 31 March. It returns every period, O(number of periods):
// callers bound the ratio of the range to d first, or use Aggregate, which
// makes only the periods that hold instances.
func Periods(from, to time.Time, d Duration) []Period {
	from, to = from.UTC(), to.UTC()
	if !from.Before(to) {
		return nil
	}
	if d.IsZero() {
		return []Period{{from, to}}
	}
	var out []Period
	for k := int64(0); ; k++ {
		s := d.addN(from, k)
		if !s.Before(to) || (k > 0 && !s.After(out[k-1].Start)) {
			return out // past to, or saturated beyond any DateTime
		}
		e := d.addN(from, k+1)
		if e.After(to) {
			e = to
		}
		out = append(out, Period{s, e})
	}
}

// periodIndex is the index k of the period (aligned at from, of duration
// d, non-zero) that holds t: the largest k with from + k×d <= t.
func periodIndex(from time.Time, d Duration, t time.Time) int64 {
	if !t.After(from) {
		return 0
	}
	if f, ok := d.Fixed(); ok && f > 0 {
		if diff := t.Sub(from); diff < math.MaxInt64 {
			return int64(diff / f)
		}
	}
	hi := int64(float64(t.Unix()-from.Unix())/d.minLength()) + 2
	for !d.addN(from, hi).After(t) {
		if hi > 1<<61 {
			return hi // t is beyond any DateTime: the last period there is
		}
		hi *= 2
	}
	lo := int64(0)
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if d.addN(from, mid).After(t) {
			hi = mid - 1
		} else {
			lo = mid
		}
	}
	return lo
}

// Bucket is one period's accumulation.
type Bucket struct {
	Period
	Acc
}

// span is the time range an aggregation covers.
type span struct {
	from, to time.Time
	openEnd  bool // to is the last instance's time, which belongs to the range
}

// spanOf is the range of q's window, with an open start replaced by the
// earliest matching instance and an open end by the latest. ok is false
// when no instance matches.
func spanOf(q *Query, series ...[]Instance) (span, bool) {
	var lo, hi time.Time
	for _, insts := range series {
		for _, in := range insts {
			t := q.TimeOf(in.Attr)
			if t.IsZero() || !q.Contains(t) {
				continue
			}
			if lo.IsZero() || t.Before(lo) {
				lo = t
			}
			if hi.IsZero() || t.After(hi) {
				hi = t
			}
		}
	}
	if lo.IsZero() {
		return span{}, false
	}
	from, to := q.Window()
	sp := span{from: from.UTC(), to: to.UTC()}
	if from.IsZero() {
		sp.from = lo.UTC()
	}
	if to.IsZero() {
		sp.to, sp.openEnd = hi.UTC(), true
	}
	return sp, true
}

// Aggregate buckets the instances q selects (by q's time property; lastN
// is not applied: aggregation summarises the window) into periods of d, and
// returns the non-empty ones in time order. Periods are aligned at timeAt
// (as annex C.5.14 shows: PT4M periods of a query from 12:00 start at 12:00
// and 12:04); when the window has no start (before, or no timerel) at the
// first instance, as Stellio does. With an end (between), the last period
// is cut at endTimeAt; without one, periods run their full length. A zero d
// is one period over the window, or over the instances' own span where the
// window is open (the last instance included). methods only say whether to
// track distinct values, which costs memory; every Acc computes the rest.
func Aggregate(insts []Instance, q *Query, methods []Method, d Duration) []Bucket {
	sp, ok := spanOf(q, insts)
	if !ok {
		return nil
	}
	return aggregate(insts, q, slices.Contains(methods, DistinctCount), d, sp)
}

func aggregate(insts []Instance, q *Query, distinct bool, d Duration, sp span) []Bucket {
	byIndex := map[int64]*Bucket{}
	for _, in := range insts {
		t := q.TimeOf(in.Attr)
		if t.IsZero() || !q.Contains(t) {
			continue
		}
		var k int64
		p := Period{sp.from, sp.to}
		if !d.IsZero() {
			k = periodIndex(sp.from, d, t)
			p = Period{d.addN(sp.from, k), d.addN(sp.from, k+1)}
			if !sp.openEnd && p.End.After(sp.to) {
				p.End = sp.to
			}
		}
		b := byIndex[k]
		if b == nil {
			b = &Bucket{Period: p, Acc: Acc{noDistinct: !distinct}}
			byIndex[k] = b
		}
		b.AddAttribute(in.Attr)
	}
	keys := make([]int64, 0, len(byIndex))
	for k := range byIndex {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Bucket, len(keys))
	for i, k := range keys {
		out[i] = *byIndex[k]
	}
	return out
}

// Series is the aggregation of one attribute instance series (an attribute
// and a datasetId): what the aggregated representation shows for it. A
// store that keeps rollups builds Series itself (NumericAcc per period) and
// renders them with RenderAggregated, without raw instances.
type Series struct {
	Name      string      // expanded attribute name
	DatasetID string      // "" for the default instance
	Kind      ngsild.Kind // the attribute's type, the "type" member
	Buckets   []Bucket
}

// AggregateEntity aggregates every attribute instance series of e with
// Aggregate, all aligned on the same periods: where q's window has no
// start, periods start at the entity's first matching instance (of any
// attribute), so the attributes' periods line up. Series come sorted by
// name, the default instance first, then by datasetId; series with no
// instance in the window are left out.
func AggregateEntity(e *Entity, q *Query, methods []Method, d Duration) []Series {
	all := make([][]Instance, 0, len(e.Attrs))
	for _, insts := range e.Attrs {
		all = append(all, insts)
	}
	sp, ok := spanOf(q, all...)
	if !ok {
		return nil
	}
	distinct := slices.Contains(methods, DistinctCount)
	var out []Series
	for _, name := range slices.Sorted(maps.Keys(e.Attrs)) {
		for _, g := range byDataset(e.Attrs[name]) {
			b := aggregate(g, q, distinct, d, sp)
			if len(b) == 0 {
				continue
			}
			out = append(out, Series{Name: name, DatasetID: g[0].Attr.DatasetID, Kind: g[len(g)-1].Attr.Kind, Buckets: b})
		}
	}
	return out
}

// byDataset groups instances by datasetId, keeping their order: the
// default instance's group ("") first, then by datasetId.
func byDataset(insts []Instance) [][]Instance {
	idx := map[string]int{}
	var groups [][]Instance
	for _, in := range insts {
		ds := in.Attr.DatasetID
		i, ok := idx[ds]
		if !ok {
			i = len(groups)
			idx[ds] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], in)
	}
	slices.SortFunc(groups, func(a, b []Instance) int {
		return cmp.Compare(a[0].Attr.DatasetID, b[0].Attr.DatasetID)
	})
	return groups
}

func compactIRI(c ngsild.Compactor, iri string) string {
	if c == nil {
		return iri
	}
	return c.CompactIRI(iri)
}
