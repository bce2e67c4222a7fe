package temporal

import (
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

func TestParseDuration(t *testing.T) {
	good := []struct {
		in, canonical string
		fixed         time.Duration // 0: not fixed (years or months)
		zero          bool
	}{
		{"PT0S", "PT0S", 0, true},
		{"P0D", "PT0S", 0, true},
		{"PT4M", "PT4M", 4 * time.Minute, false},
		{"PT1H", "PT1H", time.Hour, false},
		{"PT90M", "PT90M", 90 * time.Minute, false},
		{"PT1.5S", "PT1.5S", 1500 * time.Millisecond, false},
		{"PT0,25S", "PT0.25S", 250 * time.Millisecond, false},
		{"PT0.000000001S", "PT0.000000001S", time.Nanosecond, false},
		{"PT1.500S", "PT1.5S", 1500 * time.Millisecond, false},
		{"P1D", "P1D", 24 * time.Hour, false},
		{"P1W", "P1W", 7 * 24 * time.Hour, false},
		{"P1DT12H", "P1DT12H", 36 * time.Hour, false},
		{"P1M", "P1M", 0, false},
		{"P1Y", "P1Y", 0, false},
		{"P3Y6M4DT12H30M5S", "P3Y6M4DT12H30M5S", 0, false},
		{"P0Y0M1D", "P1D", 24 * time.Hour, false},
		{"PT36H", "PT36H", 36 * time.Hour, false},
		{"P10000Y", "P10000Y", 0, false},
		{"P0W", "PT0S", 0, true},
	}
	for _, tc := range good {
		t.Run(tc.in, func(t *testing.T) {
			d, err := ParseDuration(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.String(); got != tc.canonical {
				t.Errorf("String() = %s, want %s", got, tc.canonical)
			}
			if d.IsZero() != tc.zero {
				t.Errorf("IsZero() = %v", d.IsZero())
			}
			f, ok := d.Fixed()
			if ok != (tc.fixed != 0 || tc.zero) || f != tc.fixed {
				t.Errorf("Fixed() = %v, %v; want %v", f, ok, tc.fixed)
			}
			back, err := ParseDuration(d.String())
			if err != nil || back != d {
				t.Errorf("String() does not parse back: %v, %v", back, err)
			}
		})
	}

	bad := []struct{ in, part string }{
		{"", "empty"},
		{"P", "no elements"},
		{"PT", "T must be followed"},
		{"P1DT", "T must be followed"},
		{"-P1D", "negative"},
		{"P-1D", "expected a number"},
		{"1D", "must start with P"},
		{"p1d", "must start with P"},
		{"P1", "no designator"},
		{"PT1", "no designator"},
		{"P1H", "put a T before it"},
		{"PT1D", "not a duration designator"},
		{"P1X", "not a duration designator"},
		{"P1M1Y", "order"},
		{"P1D1D", "order"},
		{"PT1H1H", "order"},
		{"P1DT2H1D", "not a duration designator"},
		{"PT1HT2M", "T appears twice"},
		{"P1W1D", "weeks"},
		{"P1WT1H", "weeks"},
		{"P1W0D", "weeks"},
		{"P1.5D", "only seconds"},
		{"PT0.5H", "only seconds"},
		{"PT1.S", "followed by digits"},
		{"PT.5S", "expected a number"},
		{"PT1.1234567891S", "more than 9 decimals"},
		{"P99999999999999999999Y", "too large"},
		{"P10001Y", "ten thousand years"},
		{"P120001M", "ten thousand years"},
		{"P3660001D", "ten thousand years"},
		{"P9999Y13M", "ten thousand years"},
		{"PT2562048H", "time part"},
		{"PT9223372036S", "time part"},
		{"PT2562047H60M", "time part"},
		{"P0001-02-03", "designator"},
		{" P1D", "must start with P"},
		{"P1D ", "expected a number"},
		{"PT1M ", "expected a number"},
	}
	for _, tc := range bad {
		t.Run("bad "+tc.in, func(t *testing.T) {
			d, err := ParseDuration(tc.in)
			if err == nil {
				t.Fatalf("no error, got %s", d)
			}
			wantError(t, err, ngsild.BadRequestData, tc.part, "ISO 8601 duration")
		})
	}
}

func mustDuration(t testing.TB, s string) Duration {
	t.Helper()
	d, err := ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAddTo(t *testing.T) {
	cases := []struct{ from, d, want string }{
		{"2024-01-31T10:00:00Z", "P1M", "2024-02-29T10:00:00Z"}, // leap year, clamped
		{"2023-01-31T10:00:00Z", "P1M", "2023-02-28T10:00:00Z"},
		{"2024-03-31T00:00:00Z", "P1M", "2024-04-30T00:00:00Z"},
		{"2024-12-15T00:00:00Z", "P1M", "2025-01-15T00:00:00Z"},
		{"2024-02-29T00:00:00Z", "P1Y", "2025-02-28T00:00:00Z"},
		{"2024-02-29T00:00:00Z", "P4Y", "2028-02-29T00:00:00Z"},
		{"2024-01-31T00:00:00Z", "P1M1D", "2024-03-01T00:00:00Z"}, // months first, then days
		{"2024-02-28T23:00:00Z", "PT2H", "2024-02-29T01:00:00Z"},
		{"2024-03-30T12:00:00Z", "P1D", "2024-03-31T12:00:00Z"}, // a DST weekend elsewhere, 24 h in UTC
		{"2024-01-01T00:00:00Z", "P1W", "2024-01-08T00:00:00Z"},
		{"2024-01-01T00:00:00Z", "PT0.5S", "2024-01-01T00:00:00.5Z"},
		{"2024-01-31T13:00:00+01:00", "P1M", "2024-02-29T12:00:00Z"}, // computed in UTC
		{"2024-01-01T00:00:00Z", "PT0S", "2024-01-01T00:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.from+"+"+tc.d, func(t *testing.T) {
			from, _ := time.Parse(time.RFC3339Nano, tc.from)
			got := mustDuration(t, tc.d).AddTo(from)
			if want := ts(tc.want); !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("AddTo = %v, want %v", got, want)
			}
		})
	}
}

func TestAddN(t *testing.T) {
	// The k-th boundary is computed from the origin: monthly boundaries from
	// 31 January come back to the 31st whenever the month has one.
	d := mustDuration(t, "P1M")
	from := ts("2024-01-31T00:00:00Z")
	want := []string{"2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"}
	for k, w := range want {
		if got := d.addN(from, int64(k)).Format("2006-01-02"); got != w {
			t.Errorf("boundary %d = %s, want %s", k, got, w)
		}
	}
	// Far beyond any DateTime, additions saturate instead of wrapping.
	for _, s := range []string{"P10000Y", "PT2562047H", "PT1S", "P3660000D"} {
		if got := mustDuration(t, s).addN(from, 1<<62); !got.Equal(farFuture) {
			t.Errorf("%s × 2^62 = %v, want farFuture", s, got)
		}
	}
	// Large multiples of a fixed part are exact (2^62 ns is 146 years).
	if got, want := mustDuration(t, "PT0.000000001S").addN(from, 1<<62), from.Add(1<<62); !got.Equal(want) {
		t.Errorf("1 ns × 2^62 = %v, want %v", got, want)
	}
	if got, want := mustDuration(t, "PT0.5S").addN(from, 1<<30), from.Add(time.Duration(1<<30)*500*time.Millisecond); !got.Equal(want) {
		t.Errorf("0.5 s × 2^30 = %v, want %v", got, want)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"PT0S", "P1D", "P1W", "P3Y6M4DT12H30M5S", "PT1.5S", "PT0,25S", "P1M", "", "P", "PT", "-P1D", "P1.5D", "PT2562047H", "P10000Y", "P1W1D"} {
		f.Add(s)
	}
	origin := ts("2024-01-31T12:00:00Z")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !ngsild.IsType(err, ngsild.BadRequestData) {
				t.Fatalf("error %v is not BadRequestData", err)
			}
			return
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("%q: String() %q parses to %v, %v", s, d.String(), back, err)
		}
		next := d.AddTo(origin)
		if next.Before(origin) || (next.Equal(origin) != d.IsZero()) {
			t.Fatalf("%q: AddTo(%v) = %v", s, origin, next)
		}
		if f, ok := d.Fixed(); ok && !next.Equal(origin.Add(f)) {
			t.Fatalf("%q: Fixed %v but AddTo %v", s, f, next)
		}
	})
}

// TestBeyondDateTimes checks that periods and period indexes end for
// ranges past what additions can represent.
func TestBeyondDateTimes(t *testing.T) {
	from := ts("2024-01-01T00:00:00Z")
	far := time.Date(200000, 1, 1, 0, 0, 0, 0, time.UTC)
	if n := len(Periods(from, far, mustDuration(t, "P10000Y"))); n > 12 {
		t.Errorf("%d periods of ten thousand years up to year 200000", n)
	}
	if k := periodIndex(from, mustDuration(t, "P1M"), far); k <= 0 {
		t.Errorf("period index %d", k)
	}
}
