package temporal

import (
	"slices"
	"strconv"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// The temporal query language (ETSI GS CIM 009 v1.9.1, 4.11) and the
// TemporalQuery data type (5.2.21).
//
// Readings taken where the specification leaves room:
//
//   - timerel is optional. Retrieve Temporal Evolution of an Entity (5.7.3,
//     table 6.19.3.1-1) makes timerel and timeAt 0..1, each required when the
//     other is present; without them the whole recorded history is returned.
//     Query Temporal Evolution of Entities (5.7.4.4) raises BadRequestData
//     without a temporal query: that operation calls RequireTimerel after
//     parsing, so one parser serves both, as Stellio does.
//   - endTimeAt with before or after is an error rather than ignored: a
//     client sending timerel=after&endTimeAt=... almost certainly meant
//     between, and silently answering "after" would be a wrong answer.
//   - timeproperty=deletedAt is allowed by v1.9 (5.2.21) but zenne records no
//     deletion instances in history, so it is refused with
//     OperationNotSupported (valid request, not implemented) instead of
//     answering an always-empty history.
//   - The pre-v1.3 names time and endTime are accepted when timeAt and
//     endTimeAt are absent (Mintaka still takes them); error details name
//     whichever the client sent.
//   - Parameter errors are BadRequestData ("input data which does not meet
//     the requirements of the operation"), as Stellio answers them.

// ParseQuery reads a temporal query from URL parameters (get returns ""
// for an absent parameter): timerel, timeAt, endTimeAt, timeproperty and
// lastN. A query without timerel selects all instances (RelNone). Errors are
// *ngsild.Error whose detail names the parameter and says what to send.
func ParseQuery(get func(key string) string) (*Query, error) {
	p := rawQuery{
		timerel:      get("timerel"),
		timeAt:       get("timeAt"),
		timeAtName:   "timeAt",
		endTimeAt:    get("endTimeAt"),
		endTimeName:  "endTimeAt",
		timeproperty: get("timeproperty"),
		lastN:        get("lastN"),
	}
	if p.timeAt == "" {
		if s := get("time"); s != "" {
			p.timeAt, p.timeAtName = s, "time"
		}
	}
	if p.endTimeAt == "" {
		if s := get("endTime"); s != "" {
			p.endTimeAt, p.endTimeName = s, "endTime"
		}
	}
	return p.parse()
}

// ParseTemporalQ reads the temporalQ member of a POST
// /temporal/entityOperations/query body (5.2.21): timerel, timeAt,
// endTimeAt and timeproperty as strings, lastN as a positive integer (a JSON
// number; a string of digits is accepted too, as it is in the URL). A nil
// map is a query without timerel. Other members (aggrMethods,
// aggrPeriodDuration) are read by ParseTemporalQAggregation. Error details
// name members as temporalQ.<member>.
func ParseTemporalQ(m map[string]any) (*Query, error) {
	p := rawQuery{prefix: "temporalQ.", timeAtName: "timeAt", endTimeName: "endTimeAt"}
	var err error
	if p.timerel, err = memberString(m, "timerel"); err != nil {
		return nil, err
	}
	if p.timeAt, err = memberString(m, "timeAt"); err != nil {
		return nil, err
	}
	if p.endTimeAt, err = memberString(m, "endTimeAt"); err != nil {
		return nil, err
	}
	if p.timeproperty, err = memberString(m, "timeproperty"); err != nil {
		return nil, err
	}
	switch v := m["lastN"].(type) {
	case nil:
	case string:
		if v == "" {
			return nil, ngsild.Errorf(ngsild.BadRequestData, "temporalQ.lastN is empty: send a positive integer such as 10")
		}
		p.lastN = v
	case float64:
		p.lastN = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return nil, ngsild.Errorf(ngsild.BadRequestData, "temporalQ.lastN must be a positive integer such as 10, not %s", ngsild.JSONKind(v))
	}
	return p.parse()
}

// memberString returns member k of the temporalQ object, which must be a
// string when present ("" when absent).
func memberString(m map[string]any, k string) (string, error) {
	v, ok := m[k]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", ngsild.Errorf(ngsild.BadRequestData, "temporalQ.%s must be a string, not %s", k, ngsild.JSONKind(v))
	}
	return s, nil
}

// rawQuery is a temporal query as sent, before validation, with the names
// the client used for its members.
type rawQuery struct {
	prefix                     string // "temporalQ." for a POST body
	timerel, timeAt, endTimeAt string
	timeAtName, endTimeName    string
	timeproperty, lastN        string
}

const exampleTime = "2024-01-31T12:00:00Z"

func (p *rawQuery) errorf(format string, args ...any) error {
	return ngsild.Errorf(ngsild.BadRequestData, format, args...)
}

func (p *rawQuery) parse() (*Query, error) {
	q := &Query{Property: ObservedAt}
	pre := p.prefix
	switch p.timeproperty {
	case "", ObservedAt:
	case CreatedAt, ModifiedAt:
		q.Property = p.timeproperty
	case "deletedAt":
		return nil, ngsild.Errorf(ngsild.OperationNotSupported,
			"%stimeproperty deletedAt is not supported: zenne records no deletions in history; send observedAt, createdAt or modifiedAt", pre)
	default:
		return nil, p.errorf("%stimeproperty %q is not a temporal property: send observedAt (the default), createdAt or modifiedAt", pre, p.timeproperty)
	}
	if p.lastN != "" {
		n, ok := positiveInt(p.lastN)
		if !ok {
			return nil, p.errorf("%slastN %s is not a positive integer: send the number of most recent instances to return, such as 10", pre, quoteIfString(p.lastN))
		}
		q.LastN = n
	}
	switch p.timerel {
	case "":
		if p.timeAt != "" {
			return nil, p.errorf("%s%s needs timerel: send %stimerel=before, after or between with it", pre, p.timeAtName, pre)
		}
		if p.endTimeAt != "" {
			return nil, p.errorf("%s%s needs timerel: send %stimerel=between and %stimeAt with it", pre, p.endTimeName, pre, pre)
		}
		return q, nil
	case "before":
		q.Rel = RelBefore
	case "after":
		q.Rel = RelAfter
	case "between":
		q.Rel = RelBetween
	default:
		return nil, p.errorf("%stimerel %q is not a temporal relation: send before, after or between", pre, p.timerel)
	}
	if p.timeAt == "" {
		return nil, p.errorf("%stimeAt is missing: %stimerel=%s needs timeAt, a DateTime such as %s", pre, pre, p.timerel, exampleTime)
	}
	at, err := ngsild.ParseTime(p.timeAt)
	if err != nil {
		return nil, p.errorf("%s%s %q is not a DateTime: send ISO 8601 with a time zone, such as %s", pre, p.timeAtName, p.timeAt, exampleTime)
	}
	q.At = at
	if q.Rel != RelBetween {
		if p.endTimeAt != "" {
			return nil, p.errorf("%s%s is only used with timerel=between: send %stimerel=between, or drop %s", pre, p.endTimeName, pre, p.endTimeName)
		}
		return q, nil
	}
	if p.endTimeAt == "" {
		return nil, p.errorf("%sendTimeAt is missing: %stimerel=between needs endTimeAt, a DateTime after %s", pre, pre, p.timeAtName)
	}
	end, err := ngsild.ParseTime(p.endTimeAt)
	if err != nil {
		return nil, p.errorf("%s%s %q is not a DateTime: send ISO 8601 with a time zone, such as %s", pre, p.endTimeName, p.endTimeAt, exampleTime)
	}
	if !end.After(at) {
		return nil, p.errorf("%s%s %s is not after %s %s: between selects [%s, %s), so send an %s later than %s",
			pre, p.endTimeName, p.endTimeAt, p.timeAtName, p.timeAt, p.timeAtName, p.endTimeName, p.endTimeName, p.timeAtName)
	}
	q.EndAt = end
	return q, nil
}

// positiveInt parses a decimal integer >= 1 made of ASCII digits only (no
// sign, no spaces) that fits an int.
func positiveInt(s string) (int, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

func quoteIfString(s string) string {
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s
	}
	return strconv.Quote(s)
}

// RequireTimerel reports BadRequestData when q has no timerel: Query
// Temporal Evolution of Entities (5.7.4.4, GET /temporal/entities and POST
// /temporal/entityOperations/query) requires a temporal query, while
// Retrieve Temporal Evolution of an Entity does not.
func (q *Query) RequireTimerel() error {
	if q != nil && q.Rel != RelNone {
		return nil
	}
	return ngsild.Errorf(ngsild.BadRequestData,
		"querying the temporal evolution of entities needs a temporal query: send timerel (before, after or between) and timeAt, a DateTime such as %s", exampleTime)
}

// property is q's time property, observedAt for a nil query or "".
func (q *Query) property() string {
	if q == nil || q.Property == "" {
		return ObservedAt
	}
	return q.Property
}

// ByObservedAt reports whether q places instances by observedAt (the
// default), the time stores key their samples by.
func (q *Query) ByObservedAt() bool { return q.property() == ObservedAt }

// TimeOf is the time of an instance for q's time property: observedAt
// (falling back to modifiedAt, when the instance was recorded, for
// instances without observedAt, so every recorded instance has a place in
// time), createdAt or modifiedAt. A nil q means observedAt.
func (q *Query) TimeOf(a *ngsild.Attribute) time.Time {
	switch q.property() {
	case CreatedAt:
		return a.CreatedAt
	case ModifiedAt:
		return a.ModifiedAt
	default:
		if !a.ObservedAt.IsZero() {
			return a.ObservedAt
		}
		return a.ModifiedAt
	}
}

// Contains reports whether time t satisfies q's temporal relation, with the
// bounds 4.11 gives: before excludes timeAt (t < At), after includes it
// (t >= At), between includes timeAt and excludes endTimeAt
// (At <= t < EndAt), so consecutive between queries never count an instance
// twice. A zero t is an instance that does not convey the time property,
// which 4.11 says does not match; with no timerel (RelNone) every instance
// matches. A nil q matches everything.
func (q *Query) Contains(t time.Time) bool {
	if q == nil || q.Rel == RelNone {
		return true
	}
	if t.IsZero() {
		return false
	}
	switch q.Rel {
	case RelBefore:
		return t.Before(q.At)
	case RelAfter:
		return !t.Before(q.At)
	case RelBetween:
		return !t.Before(q.At) && t.Before(q.EndAt)
	}
	return false
}

// Window is the time interval q covers, [from, to), with zero values for
// open ends: stores use it to read only the chunks that can hold matching
// instances. RelNone is open at both ends.
func (q *Query) Window() (from, to time.Time) {
	if q == nil {
		return time.Time{}, time.Time{}
	}
	switch q.Rel {
	case RelBefore:
		return time.Time{}, q.At
	case RelAfter:
		return q.At, time.Time{}
	case RelBetween:
		return q.At, q.EndAt
	}
	return time.Time{}, time.Time{}
}

// Select returns the instances of one attribute that q selects, in
// ascending order of q's time property (stable, so instances recorded with
// the same time keep their recorded order), keeping only the last q.LastN of
// each datasetId. insts is not modified.
//
// lastN: 5.7.3.4 says "the last n timestamps (in descending ordering) of the
// temporal property ... per Attribute". With several datasetIds we read each
// datasetId's instances as its own series (two sensors writing one
// multi-attribute each keep their last n), which is what Query.LastN
// documents and what the embedded store does.
func (q *Query) Select(insts []Instance) []Instance {
	out := make([]Instance, 0, len(insts))
	for _, in := range insts {
		if q.Contains(q.TimeOf(in.Attr)) {
			out = append(out, in)
		}
	}
	slices.SortStableFunc(out, func(a, b Instance) int {
		return q.TimeOf(a.Attr).Compare(q.TimeOf(b.Attr))
	})
	if q == nil || q.LastN <= 0 {
		return out
	}
	counts := map[string]int{}
	for _, in := range out {
		counts[in.Attr.DatasetID]++
	}
	kept := out[:0]
	seen := map[string]int{}
	for _, in := range out {
		ds := in.Attr.DatasetID
		seen[ds]++
		if counts[ds]-seen[ds] < q.LastN {
			kept = append(kept, in)
		}
	}
	return kept
}
