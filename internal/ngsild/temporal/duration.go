package temporal

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Duration is an ISO 8601 duration as aggrPeriodDuration carries it
// (4.5.19.1): P[n]Y[n]M[n]DT[n]H[n]M[n]S or P[n]W. It keeps its components
// rather than a length because months and years have no fixed length: a
// period of P1M starting on 31 January ends at the end of February.
//
// The zero Duration is "PT0S", which aggregation reads as one period
// spanning the whole time range of the query.
type Duration struct {
	years, months, weeks, days int64
	hours, minutes, seconds    int64
	nanos                      int64 // fraction of a second, 0..999999999
}

// Limits that keep every computation on a Duration inside int64 and inside
// the years time.Time and DateTimes (0000-9999) can hold.
const (
	maxMonths  = 10000 * 12    // ten thousand years
	maxDays    = 10000 * 366   // ten thousand years of days, weeks included
	maxSeconds = 9_223_372_035 // the time part must fit a time.Duration
)

// ParseDuration parses an ISO 8601 duration as 4.5.19.1 defines it:
// P[n]Y[n]M[n]DT[n]H[n]M[n]S or P[n]W, elements in that order, each at most
// once, zero-valued elements omittable, at least one element, a T only
// before a time element. Only the seconds may have a fraction (a '.' or ','
// and up to 9 digits: ISO 8601 allows a fraction on the lowest-order element
// only, and every implementation we know uses it on seconds). Weeks cannot
// be combined with other elements (the specification's P[n]W form). Negative
// durations, combined date-time representations (P0001-02-03) and durations
// over ten thousand years are rejected. Errors are BadRequestData.
func ParseDuration(s string) (Duration, error) {
	bad := func(why string, args ...any) (Duration, error) {
		return Duration{}, ngsild.Errorf(ngsild.BadRequestData,
			"%q is not an ISO 8601 duration (PnYnMnDTnHnMnS or PnW, such as PT15M, P1D or P1M): %s", s, fmt.Sprintf(why, args...))
	}
	switch {
	case s == "":
		return bad("it is empty")
	case s[0] == '-':
		return bad("negative durations are not allowed")
	case s[0] != 'P':
		return bad("it must start with P")
	}
	var d Duration
	inTime, any, weeks := false, false, false
	last := -1 // index of the last element read, to enforce order
	for i := 1; i < len(s); {
		if s[i] == 'T' {
			if inTime {
				return bad("T appears twice")
			}
			inTime = true
			i++
			if i == len(s) {
				return bad("T must be followed by hours (H), minutes (M) or seconds (S)")
			}
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j == i {
			return bad("expected a number at %q", s[i:])
		}
		num, frac := s[i:j], ""
		if j < len(s) && (s[j] == '.' || s[j] == ',') {
			k := j + 1
			for k < len(s) && isDigit(s[k]) {
				k++
			}
			if k == j+1 {
				return bad("a decimal separator must be followed by digits")
			}
			frac, j = s[j+1:k], k
		}
		if j == len(s) {
			return bad("the number %s has no designator (Y, M, W, D, or after T: H, M, S)", s[i:j])
		}
		idx := elementIndex(s[j], inTime)
		if idx < 0 {
			if !inTime && (s[j] == 'H' || s[j] == 'S') {
				return bad("%c is a time element: put a T before it (PT%s%c)", s[j], num, s[j])
			}
			return bad("%q is not a duration designator here", s[j])
		}
		if idx <= last {
			return bad("elements must appear once each, in the order Y, M, W, D, T, H, M, S")
		}
		if frac != "" && idx != elemSeconds {
			return bad("only seconds may have a fraction")
		}
		if len(frac) > 9 {
			return bad("seconds have more than 9 decimals")
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return bad("%s is too large", num)
		}
		switch idx {
		case elemYears:
			d.years = n
		case elemMonths:
			d.months = n
		case elemWeeks:
			d.weeks, weeks = n, true
		case elemDays:
			d.days = n
		case elemHours:
			d.hours = n
		case elemMinutes:
			d.minutes = n
		case elemSeconds:
			d.seconds = n
			if frac != "" {
				f, _ := strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
				d.nanos = f
			}
		}
		last, any = idx, true
		i = j + 1
	}
	if !any {
		return bad("it has no elements")
	}
	if weeks && (last != elemWeeks || (d.years|d.months|d.days|d.hours|d.minutes|d.seconds|d.nanos) != 0) {
		return bad("weeks (PnW) cannot be combined with other elements")
	}
	if d.years > maxMonths/12 || d.months > maxMonths || d.years*12+d.months > maxMonths ||
		d.weeks > maxDays/7 || d.days > maxDays || d.weeks*7+d.days > maxDays {
		return bad("it is longer than ten thousand years")
	}
	if d.hours > maxSeconds/3600 || d.minutes > maxSeconds/60 || d.seconds > maxSeconds ||
		d.hours*3600+d.minutes*60+d.seconds > maxSeconds {
		return bad("its time part is longer than %d hours", maxSeconds/3600)
	}
	return d, nil
}

// Element indexes in the order ISO 8601 writes them.
const (
	elemYears = iota
	elemMonths
	elemWeeks
	elemDays
	elemHours
	elemMinutes
	elemSeconds
)

func elementIndex(c byte, inTime bool) int {
	if inTime {
		switch c {
		case 'H':
			return elemHours
		case 'M':
			return elemMinutes
		case 'S':
			return elemSeconds
		}
		return -1
	}
	switch c {
	case 'Y':
		return elemYears
	case 'M':
		return elemMonths
	case 'W':
		return elemWeeks
	case 'D':
		return elemDays
	}
	return -1
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// String is the canonical ISO 8601 form of d ("PT0S" for zero); parsing it
// gives d back.
func (d Duration) String() string {
	var b strings.Builder
	b.WriteByte('P')
	for _, e := range []struct {
		n int64
		c byte
	}{{d.years, 'Y'}, {d.months, 'M'}, {d.weeks, 'W'}, {d.days, 'D'}} {
		if e.n != 0 {
			b.WriteString(strconv.FormatInt(e.n, 10))
			b.WriteByte(e.c)
		}
	}
	if d.hours != 0 || d.minutes != 0 || d.seconds != 0 || d.nanos != 0 {
		b.WriteByte('T')
		if d.hours != 0 {
			b.WriteString(strconv.FormatInt(d.hours, 10))
			b.WriteByte('H')
		}
		if d.minutes != 0 {
			b.WriteString(strconv.FormatInt(d.minutes, 10))
			b.WriteByte('M')
		}
		if d.seconds != 0 || d.nanos != 0 {
			b.WriteString(strconv.FormatInt(d.seconds, 10))
			if d.nanos != 0 {
				b.WriteByte('.')
				b.WriteString(strings.TrimRight(fmt.Sprintf("%09d", d.nanos), "0"))
			}
			b.WriteByte('S')
		}
	}
	if b.Len() == 1 {
		return "PT0S"
	}
	return b.String()
}

// IsZero reports whether d is a duration of zero ("PT0S", "P0D"), which
// aggregation reads as one period over the whole time range.
func (d Duration) IsZero() bool { return d == Duration{} }

// calendarMonths is d's years and months in months.
func (d Duration) calendarMonths() int64 { return d.years*12 + d.months }

// dayCount is d's weeks and days in days.
func (d Duration) dayCount() int64 { return d.weeks*7 + d.days }

// timePart is d's hours, minutes and seconds (ParseDuration keeps it within
// a time.Duration).
func (d Duration) timePart() time.Duration {
	return time.Duration((d.hours*3600+d.minutes*60+d.seconds)*1e9 + d.nanos)
}

// Fixed returns d's exact length when it has one: when d has no years or
// months. Days and weeks count as 24 and 168 hours, which is exact because
// zenne computes periods in UTC (no daylight saving) and Go's time has no
// leap seconds. It also reports false when d is too long for a
// time.Duration (about 292 years).
func (d Duration) Fixed() (time.Duration, bool) {
	if d.calendarMonths() != 0 {
		return 0, false
	}
	days := d.dayCount()
	const day = int64(24 * time.Hour)
	if days > (math.MaxInt64-int64(d.timePart()))/day {
		return 0, false
	}
	return time.Duration(days*day) + d.timePart(), true
}

// AddTo returns t + d in UTC: years and months first, on the calendar, with
// the day of the month clamped to the target month's last day (31 January +
// P1M is 28 or 29 February, not 2 or 3 March as time.AddDate would give, so
// monthly periods stay in their months), then days, then the time part
// exactly. This is the order ISO 8601 and java.time/PostgreSQL use.
func (d Duration) AddTo(t time.Time) time.Time { return d.addN(t, 1) }

// farFuture stands for a time beyond any DateTime (which ends in 9999), for
// results that would overflow.
var farFuture = time.Date(100000, 1, 1, 0, 0, 0, 0, time.UTC)

// addN returns t + k×d (k >= 0) computed from t in one step, so the k-th
// period boundary does not drift with clamping (31 January + 2×P1M is 31
// March, not 28 March).
func (d Duration) addN(t time.Time, k int64) time.Time {
	t = t.UTC()
	if k == 0 {
		return t
	}
	if m := d.calendarMonths(); m != 0 {
		mk, ok := mul(m, k)
		if !ok || mk > 1e7 {
			return farFuture
		}
		t = addMonths(t, mk)
	}
	if dd := d.dayCount(); dd != 0 {
		dk, ok := mul(dd, k)
		if !ok || dk > 1e8 {
			return farFuture
		}
		t = t.AddDate(0, 0, int(dk))
	}
	if f := d.timePart(); f != 0 {
		// k×f may overflow a time.Duration: add whole seconds and the rest
		// separately.
		hi, lo := bits.Mul64(uint64(k), uint64(f))
		if hi >= 1e9 {
			return farFuture
		}
		secs, ns := bits.Div64(hi, lo, 1e9)
		if secs > 1<<40 {
			return farFuture
		}
		t = t.Add(time.Duration(ns))
		t = time.Unix(t.Unix()+int64(secs), int64(t.Nanosecond())).UTC()
	}
	if t.After(farFuture) {
		return farFuture
	}
	return t
}

// mul multiplies two non-negative int64s, reporting overflow.
func mul(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// addMonths adds months on the calendar, clamping the day to the target
// month's length.
func addMonths(t time.Time, months int64) time.Time {
	y, m, day := t.Date()
	total := int64(y)*12 + int64(m-1) + months
	ny, nm := total/12, total%12
	if nm < 0 {
		ny, nm = ny-1, nm+12
	}
	if last := daysIn(int(ny), time.Month(nm+1)); day > last {
		day = last
	}
	return time.Date(int(ny), time.Month(nm+1), day, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// minLength is a lower bound of d's length, for estimating how many
// periods fit in a span.
func (d Duration) minLength() float64 {
	return float64(d.calendarMonths())*28*86400 + float64(d.dayCount())*86400 + d.timePart().Seconds()
}
