package temporal

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

func params(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func ts(s string) time.Time {
	t, err := ngsild.ParseTime(s)
	if err != nil {
		panic(err)
	}
	return t
}

// wantError checks that err is an *ngsild.Error of type typ whose detail
// contains every one of parts.
func wantError(t *testing.T, err error, typ ngsild.ErrorType, parts ...string) {
	t.Helper()
	var e *ngsild.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *ngsild.Error", err, err)
	}
	if e.Type != typ {
		t.Errorf("type = %s, want %s (detail %q)", e.Type, typ, e.Detail)
	}
	for _, p := range parts {
		if !strings.Contains(e.Detail, p) {
			t.Errorf("detail %q does not contain %q", e.Detail, p)
		}
	}
}

func TestParseQuery(t *testing.T) {
	good := []struct {
		name string
		get  func(string) string
		want Query
	}{
		{"nothing: all history", params(), Query{Property: ObservedAt}},
		{"before", params("timerel", "before", "timeAt", "2024-01-31T12:00:00Z"),
			Query{Rel: RelBefore, At: ts("2024-01-31T12:00:00Z"), Property: ObservedAt}},
		{"after with offset becomes UTC", params("timerel", "after", "timeAt", "2024-01-31T13:00:00+01:00"),
			Query{Rel: RelAfter, At: ts("2024-01-31T12:00:00Z"), Property: ObservedAt}},
		{"between", params("timerel", "between", "timeAt", "2024-01-31T12:00:00Z", "endTimeAt", "2024-01-31T13:00:00.5Z"),
			Query{Rel: RelBetween, At: ts("2024-01-31T12:00:00Z"), EndAt: ts("2024-01-31T13:00:00.5Z"), Property: ObservedAt}},
		{"timeproperty modifiedAt", params("timeproperty", "modifiedAt"), Query{Property: ModifiedAt}},
		{"timeproperty createdAt", params("timeproperty", "createdAt", "timerel", "after", "timeAt", "2024-01-01T00:00:00Z"),
			Query{Rel: RelAfter, At: ts("2024-01-01T00:00:00Z"), Property: CreatedAt}},
		{"timeproperty observedAt", params("timeproperty", "observedAt"), Query{Property: ObservedAt}},
		{"lastN", params("lastN", "10"), Query{Property: ObservedAt, LastN: 10}},
		{"old names time and endTime", params("timerel", "between", "time", "2024-01-31T12:00:00Z", "endTime", "2024-01-31T13:00:00Z"),
			Query{Rel: RelBetween, At: ts("2024-01-31T12:00:00Z"), EndAt: ts("2024-01-31T13:00:00Z"), Property: ObservedAt}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseQuery(tc.get)
			if err != nil {
				t.Fatal(err)
			}
			if *q != tc.want {
				t.Errorf("got %+v, want %+v", *q, tc.want)
			}
		})
	}

	bad := []struct {
		name  string
		get   func(string) string
		typ   ngsild.ErrorType
		parts []string
	}{
		{"timerel without timeAt", params("timerel", "before"), ngsild.BadRequestData, []string{"timeAt is missing", "timerel=before"}},
		{"between without endTimeAt", params("timerel", "between", "timeAt", "2024-01-31T12:00:00Z"), ngsild.BadRequestData, []string{"endTimeAt is missing", "between"}},
		{"endTimeAt before timeAt", params("timerel", "between", "timeAt", "2024-01-31T12:00:00Z", "endTimeAt", "2024-01-31T11:00:00Z"), ngsild.BadRequestData, []string{"endTimeAt 2024-01-31T11:00:00Z is not after timeAt", "later than timeAt"}},
		{"endTimeAt equal to timeAt", params("timerel", "between", "timeAt", "2024-01-31T12:00:00Z", "endTimeAt", "2024-01-31T13:00:00+01:00"), ngsild.BadRequestData, []string{"endTimeAt", "not after timeAt"}},
		{"unknown timerel", params("timerel", "during", "timeAt", "2024-01-31T12:00:00Z"), ngsild.BadRequestData, []string{`timerel "during"`, "before, after or between"}},
		{"timerel in capitals", params("timerel", "Before", "timeAt", "2024-01-31T12:00:00Z"), ngsild.BadRequestData, []string{`timerel "Before"`}},
		{"unknown timeproperty", params("timeproperty", "observed"), ngsild.BadRequestData, []string{`timeproperty "observed"`, "observedAt", "createdAt", "modifiedAt"}},
		{"deletedAt unsupported", params("timeproperty", "deletedAt"), ngsild.OperationNotSupported, []string{"timeproperty deletedAt", "observedAt, createdAt or modifiedAt"}},
		{"bad timeAt", params("timerel", "after", "timeAt", "yesterday"), ngsild.BadRequestData, []string{`timeAt "yesterday"`, "DateTime", exampleTime}},
		{"timeAt without zone", params("timerel", "after", "timeAt", "2024-01-31T12:00:00"), ngsild.BadRequestData, []string{"timeAt", "time zone"}},
		{"bad endTimeAt", params("timerel", "between", "timeAt", "2024-01-31T12:00:00Z", "endTimeAt", "2024-13-01T00:00:00Z"), ngsild.BadRequestData, []string{`endTimeAt "2024-13-01T00:00:00Z"`, "DateTime"}},
		{"bad old name time", params("timerel", "after", "time", "now"), ngsild.BadRequestData, []string{`time "now"`}},
		{"lastN zero", params("lastN", "0"), ngsild.BadRequestData, []string{"lastN 0", "positive integer"}},
		{"lastN negative", params("lastN", "-3"), ngsild.BadRequestData, []string{"lastN -3"}},
		{"lastN fraction", params("lastN", "1.5"), ngsild.BadRequestData, []string{"lastN 1.5"}},
		{"lastN word", params("lastN", "ten"), ngsild.BadRequestData, []string{`lastN "ten"`}},
		{"lastN plus sign", params("lastN", "+5"), ngsild.BadRequestData, []string{"lastN +5", "positive integer"}},
		{"lastN overflow", params("lastN", "99999999999999999999999"), ngsild.BadRequestData, []string{"lastN 99999999999999999999999"}},
		{"timeAt without timerel", params("timeAt", "2024-01-31T12:00:00Z"), ngsild.BadRequestData, []string{"timeAt needs timerel"}},
		{"endTimeAt without timerel", params("endTimeAt", "2024-01-31T12:00:00Z"), ngsild.BadRequestData, []string{"endTimeAt needs timerel", "timerel=between"}},
		{"endTimeAt with after", params("timerel", "after", "timeAt", "2024-01-31T12:00:00Z", "endTimeAt", "2024-01-31T13:00:00Z"), ngsild.BadRequestData, []string{"endTimeAt is only used with timerel=between"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseQuery(tc.get)
			if err == nil {
				t.Fatalf("no error, got %+v", *q)
			}
			wantError(t, err, tc.typ, tc.parts...)
		})
	}
}

func TestParseTemporalQ(t *testing.T) {
	good := []struct {
		name string
		m    map[string]any
		want Query
	}{
		{"nil", nil, Query{Property: ObservedAt}},
		{"between with lastN number", map[string]any{
			"timerel": "between", "timeAt": "2024-01-31T12:00:00Z", "endTimeAt": "2024-01-31T13:00:00Z",
			"timeproperty": "modifiedAt", "lastN": float64(3), "aggrMethods": []any{"avg"},
		}, Query{Rel: RelBetween, At: ts("2024-01-31T12:00:00Z"), EndAt: ts("2024-01-31T13:00:00Z"), Property: ModifiedAt, LastN: 3}},
		{"lastN string", map[string]any{"lastN": "7"}, Query{Property: ObservedAt, LastN: 7}},
		{"null members are absent", map[string]any{"timerel": nil, "lastN": nil}, Query{Property: ObservedAt}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ParseTemporalQ(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if *q != tc.want {
				t.Errorf("got %+v, want %+v", *q, tc.want)
			}
		})
	}
	bad := []struct {
		name  string
		m     map[string]any
		parts []string
	}{
		{"timerel not a string", map[string]any{"timerel": 1.0}, []string{"temporalQ.timerel must be a string", "a number"}},
		{"timeAt not a string", map[string]any{"timerel": "after", "timeAt": map[string]any{}}, []string{"temporalQ.timeAt must be a string", "an object"}},
		{"missing timeAt", map[string]any{"timerel": "after"}, []string{"temporalQ.timeAt is missing"}},
		{"bad endTimeAt", map[string]any{"timerel": "between", "timeAt": "2024-01-31T12:00:00Z", "endTimeAt": "noon"}, []string{`temporalQ.endTimeAt "noon"`}},
		{"lastN fraction", map[string]any{"lastN": 2.5}, []string{"temporalQ.lastN 2.5", "positive integer"}},
		{"lastN negative", map[string]any{"lastN": -1.0}, []string{"temporalQ.lastN -1"}},
		{"lastN huge", map[string]any{"lastN": 1e30}, []string{"temporalQ.lastN"}},
		{"lastN bool", map[string]any{"lastN": true}, []string{"temporalQ.lastN must be a positive integer", "a boolean"}},
		{"lastN empty string", map[string]any{"lastN": ""}, []string{"temporalQ.lastN is empty"}},
		{"timeproperty unknown", map[string]any{"timeproperty": "at"}, []string{`temporalQ.timeproperty "at"`}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTemporalQ(tc.m)
			wantError(t, err, ngsild.BadRequestData, tc.parts...)
		})
	}
}

func TestRequireTimerel(t *testing.T) {
	wantError(t, (&Query{}).RequireTimerel(), ngsild.BadRequestData, "timerel", "timeAt")
	wantError(t, (*Query)(nil).RequireTimerel(), ngsild.BadRequestData, "timerel")
	if err := (&Query{Rel: RelAfter}).RequireTimerel(); err != nil {
		t.Error(err)
	}
}

func TestContains(t *testing.T) {
	at, end := ts("2024-01-31T12:00:00Z"), ts("2024-01-31T13:00:00Z")
	justBefore, justAfter := at.Add(-time.Nanosecond), at.Add(time.Nanosecond)
	cases := []struct {
		name string
		q    *Query
		t    time.Time
		want bool
	}{
		{"before excludes timeAt", &Query{Rel: RelBefore, At: at}, at, false},
		{"before includes earlier", &Query{Rel: RelBefore, At: at}, justBefore, true},
		{"before excludes later", &Query{Rel: RelBefore, At: at}, justAfter, false},
		{"after includes timeAt", &Query{Rel: RelAfter, At: at}, at, true},
		{"after excludes earlier", &Query{Rel: RelAfter, At: at}, justBefore, false},
		{"between includes timeAt", &Query{Rel: RelBetween, At: at, EndAt: end}, at, true},
		{"between excludes endTimeAt", &Query{Rel: RelBetween, At: at, EndAt: end}, end, false},
		{"between includes just before end", &Query{Rel: RelBetween, At: at, EndAt: end}, end.Add(-time.Nanosecond), true},
		{"between excludes before start", &Query{Rel: RelBetween, At: at, EndAt: end}, justBefore, false},
		{"no timerel matches all", &Query{}, justBefore, true},
		{"no timerel matches zero", &Query{}, time.Time{}, true},
		{"zero time does not match before", &Query{Rel: RelBefore, At: at}, time.Time{}, false},
		{"nil query matches", nil, at, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.q.Contains(tc.t); got != tc.want {
				t.Errorf("Contains(%v) = %v, want %v", tc.t, got, tc.want)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	at, end := ts("2024-01-31T12:00:00Z"), ts("2024-01-31T13:00:00Z")
	var zero time.Time
	cases := []struct {
		name     string
		q        *Query
		from, to time.Time
	}{
		{"none", &Query{}, zero, zero},
		{"nil", nil, zero, zero},
		{"before", &Query{Rel: RelBefore, At: at}, zero, at},
		{"after", &Query{Rel: RelAfter, At: at}, at, zero},
		{"between", &Query{Rel: RelBetween, At: at, EndAt: end}, at, end},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			from, to := tc.q.Window()
			if !from.Equal(tc.from) || !to.Equal(tc.to) {
				t.Errorf("Window() = %v, %v; want %v, %v", from, to, tc.from, tc.to)
			}
		})
	}
}

func TestTimeOf(t *testing.T) {
	obs, cr, mod := ts("2024-01-01T10:00:00Z"), ts("2024-01-01T11:00:00Z"), ts("2024-01-01T12:00:00Z")
	a := &ngsild.Attribute{ObservedAt: obs, CreatedAt: cr, ModifiedAt: mod}
	noObs := &ngsild.Attribute{CreatedAt: cr, ModifiedAt: mod}
	cases := []struct {
		name string
		q    *Query
		a    *ngsild.Attribute
		want time.Time
	}{
		{"observedAt", &Query{Property: ObservedAt}, a, obs},
		{"default is observedAt", &Query{}, a, obs},
		{"nil query is observedAt", nil, a, obs},
		{"observedAt falls back to modifiedAt", &Query{}, noObs, mod},
		{"createdAt", &Query{Property: CreatedAt}, a, cr},
		{"modifiedAt", &Query{Property: ModifiedAt}, a, mod},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.q.TimeOf(tc.a); !got.Equal(tc.want) {
				t.Errorf("TimeOf = %v, want %v", got, tc.want)
			}
		})
	}
}

func inst(id, ds string, obs string, v any) Instance {
	return Instance{ID: id, Attr: &ngsild.Attribute{Kind: ngsild.Property, Value: v, DatasetID: ds, ObservedAt: ts(obs)}}
}

func ids(insts []Instance) string {
	var s []string
	for _, in := range insts {
		s = append(s, in.ID)
	}
	return strings.Join(s, ",")
}

func TestSelect(t *testing.T) {
	insts := []Instance{
		inst("a3", "", "2024-01-01T03:00:00Z", 3.0),
		inst("a1", "", "2024-01-01T01:00:00Z", 1.0),
		inst("b1", "urn:ds:b", "2024-01-01T01:30:00Z", 1.0),
		inst("a2", "", "2024-01-01T02:00:00Z", 2.0),
		inst("b2", "urn:ds:b", "2024-01-01T02:30:00Z", 2.0),
		inst("a4", "", "2024-01-01T04:00:00Z", 4.0),
	}
	orig := ids(insts)
	cases := []struct {
		name string
		q    *Query
		want string
	}{
		{"all, ordered", &Query{}, "a1,b1,a2,b2,a3,a4"},
		{"between", &Query{Rel: RelBetween, At: ts("2024-01-01T02:00:00Z"), EndAt: ts("2024-01-01T04:00:00Z")}, "a2,b2,a3"},
		{"lastN per datasetId", &Query{LastN: 1}, "b2,a4"},
		{"lastN within window", &Query{Rel: RelBefore, At: ts("2024-01-01T03:00:00Z"), LastN: 2}, "a1,b1,a2,b2"},
		{"lastN larger than series", &Query{LastN: 10}, "a1,b1,a2,b2,a3,a4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(tc.q.Select(insts)); got != tc.want {
				t.Errorf("Select = %s, want %s", got, tc.want)
			}
			if ids(insts) != orig {
				t.Errorf("Select changed its input: %s", ids(insts))
			}
		})
	}
}

func FuzzParseQuery(f *testing.F) {
	f.Add("between", "2024-01-31T12:00:00Z", "2024-01-31T13:00:00Z", "observedAt", "10")
	f.Add("before", "2024-01-31T12:00:00+01:00", "", "modifiedAt", "")
	f.Add("after", "2024-01-31T12:00:00.123456789Z", "", "", "1")
	f.Add("", "", "", "deletedAt", "0")
	f.Add("between", "2024-01-31T12:00:00Z", "2024-01-31T12:00:00Z", "createdAt", "-1")
	f.Add("during", "x", "y", "z", "9999999999999999999999")
	f.Fuzz(func(t *testing.T, timerel, timeAt, endTimeAt, timeproperty, lastN string) {
		q, err := ParseQuery(params("timerel", timerel, "timeAt", timeAt, "endTimeAt", endTimeAt, "timeproperty", timeproperty, "lastN", lastN))
		if err != nil {
			var e *ngsild.Error
			if !errors.As(err, &e) || (e.Type != ngsild.BadRequestData && e.Type != ngsild.OperationNotSupported) || e.Detail == "" {
				t.Fatalf("error %v is not a BadRequestData/OperationNotSupported ngsild.Error with a detail", err)
			}
			return
		}
		if q.LastN < 0 {
			t.Errorf("LastN %d", q.LastN)
		}
		switch q.Property {
		case ObservedAt, CreatedAt, ModifiedAt:
		default:
			t.Errorf("Property %q", q.Property)
		}
		from, to := q.Window()
		switch q.Rel {
		case RelNone:
			if timeAt != "" || endTimeAt != "" || !from.IsZero() || !to.IsZero() {
				t.Errorf("RelNone with times: %+v", q)
			}
		case RelBetween:
			if !q.EndAt.After(q.At) {
				t.Errorf("between with EndAt %v not after At %v", q.EndAt, q.At)
			}
			if !q.Contains(q.At) || q.Contains(q.EndAt) {
				t.Errorf("between bounds wrong for %+v", q)
			}
		case RelBefore:
			if q.Contains(q.At) || !q.EndAt.IsZero() {
				t.Errorf("before bounds wrong for %+v", q)
			}
		case RelAfter:
			if !q.Contains(q.At) || !q.EndAt.IsZero() {
				t.Errorf("after bounds wrong for %+v", q)
			}
		}
		if q.At.Location() != time.UTC || q.EndAt.Location() != time.UTC {
			t.Errorf("times not in UTC: %+v", q)
		}
	})
}
