package simulate

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"

	"github.com/zenne-city/zenne/internal/demo"
)

// Readings are pure functions of the device and the time: the same seed and
// time always give the same values, so nothing is kept between readings and
// a fleet is safe for concurrent use. Values follow Brussels wall-clock time.

// Reading is what the device sends for its reading at t: payload field ->
// value, with the short field names of the kind's mapping (Kind.Attributes),
// without a timestamp. It is nil while the device is silent.
func (d *Device) Reading(t time.Time) map[string]any {
	if d.Silent(t) {
		return nil
	}
	return d.reading(t)
}

// Readings are the n readings of the quarter hours ending at t (truncated to
// the quarter hour), oldest first, each with its time in "ts": what a
// datalogger uploads at once. Silence does not apply: a logger keeps what it
// measured while it could not send.
func (d *Device) Readings(t time.Time, n int) []map[string]any {
	end := t.Truncate(15 * time.Minute)
	out := make([]map[string]any, 0, n)
	for i := n - 1; i >= 0; i-- {
		ti := end.Add(-time.Duration(i) * 15 * time.Minute)
		m := d.reading(ti)
		m["ts"] = timestamp(ti)
		out = append(out, m)
	}
	return out
}

// Silent reports whether the device sends nothing at t. Silence-prone
// devices are silent for whole 6-hour blocks, about 30% of them, so they
// stop for 6 hours or more now and then. Scripted outages (Outage) silence
// any device.
func (d *Device) Silent(t time.Time) bool {
	if d.out(t) {
		return true
	}
	if !d.SilentProne {
		return false
	}
	block := floorDiv(t.Unix(), silentBlock)
	return d.unit(saltSilent, uint64(block)) < 0.3
}

const silentBlock = 6 * 3600 // seconds

// Salts keep the random streams of different uses apart.
const (
	saltReading uint64 = iota + 1
	saltSilent
	saltWater
	saltParking
	saltBattery
)

func (d *Device) reading(t time.Time) map[string]any {
	r := d.rand(t)
	switch d.Kind {
	case Datalogger:
		return d.datalogger(t, r)
	case WaterMeter:
		return d.water(t, r)
	case WasteBin:
		return map[string]any{
			"f": int(clamp(math.Round(d.fill(t)*100+r.NormFloat64()), 0, 100)),
			"t": round(d.outdoorTemp(t, r)+1, 1),
			"b": d.battery(t),
		}
	case PedestrianCounter:
		return d.pedestrians(t, r)
	case ParkingSensor:
		return d.parking(t, r)
	case AirQuality:
		return d.air(t, r)
	case NoiseMeter:
		return d.noise(t, r)
	case Probe:
		return map[string]any{"v": t.UnixMilli()}
	}
	return map[string]any{}
}

// ---- energy dataloggers ----

// buildingOpen reports whether a building of the profile is open on wd.
func buildingOpen(wd time.Weekday, profile string) bool {
	return profile == "everyday" || (wd != time.Saturday && wd != time.Sunday)
}

// occupancy is how busy a building is at local hour h: office hours on
// working days for "weekdays" buildings (town halls, schools, offices),
// 8:00–21:30 every day for "everyday" ones (pools, libraries, sports).
func occupancy(h float64, wd time.Weekday, profile string) float64 {
	if !buildingOpen(wd, profile) {
		return 0
	}
	if profile == "everyday" {
		f := sigmoid((h-8)/0.4) * sigmoid((21.5-h)/0.4)
		if wd == time.Sunday {
			f *= 0.8
		}
		return f
	}
	return sigmoid((h-7.5)/0.5) * sigmoid((18.5-h)/0.6)
}

// buildingLoad is the electric load relative to full occupancy: a base load
// (ventilation, servers, fridges) of 20% that never stops.
func buildingLoad(h float64, wd time.Weekday, profile string) float64 {
	return 0.2 + 0.8*occupancy(h, wd, profile)
}

// datalogger: kWh in the quarter hour ending at t, the quarter's peak
// power (kW) and the indoor temperature.
func (d *Device) datalogger(t time.Time, r *rand.Rand) map[string]any {
	h, wd := d.local(t.Add(-450 * time.Second))
	occ := occupancy(h, wd, d.m.profile)
	e := d.m.energyScale * (0.2 + 0.8*occ) * lognormal(r, 0.06) * d.surge(t.Add(-450*time.Second))
	temp := 17.2 + 3.3*occ + 0.3*r.NormFloat64() // heating set back outside opening hours
	return map[string]any{
		"e": round(e, 3),
		"p": round(e*4*(1.05+0.35*r.Float64()), 2),
		"t": round(temp, 1),
	}
}

// ---- water meters ----

// waterUse is the relative water use at local hour h: office hours with a
// lunch peak on working days, a little cleaning on closed days, nothing at
// night.
func waterUse(h float64, wd time.Weekday) float64 {
	if !buildingOpen(wd, "weekdays") {
		return 0.3 * bell(h, 9, 1)
	}
	return sigmoid((h-7)/0.4) * sigmoid((19-h)/0.6) * (1 + 0.6*bell(h, 12.5, 1))
}

// water: the meter's index (litres), the litres of the quarter hour ending
// at t, and the lowest flow in that quarter (l/h), which never reaches zero
// with a leak.
func (d *Device) water(t time.Time, r *rand.Rand) map[string]any {
	now := d.waterCumulative(t)
	q := max(0, now-d.waterCumulative(t.Add(-15*time.Minute)))
	h, wd := d.local(t.Add(-450 * time.Second))
	mf := d.LeakFlow
	if waterUse(h, wd) > 0.3 && r.Float64() < 0.4 {
		mf += 2 + 25*r.Float64()
	}
	return map[string]any{
		"v":  math.Round(d.m.waterBase + now),
		"q":  round(q, 1),
		"mf": round(mf, 1),
	}
}

// waterEpoch is a Monday: cumulative water use counts whole weeks from it.
func waterEpoch() time.Time { return time.Date(2000, 1, 3, 0, 0, 0, 0, time.UTC) }

// waterCumulative is the litres used from waterEpoch to t. Each local day
// uses its weekday's total (leak included); within the day the use is
// spread over the quarter hours by waterUse with noise, so the index only
// grows and the quarter-hour volumes add up to it exactly.
func (d *Device) waterCumulative(t time.Time) float64 {
	l := t.In(d.loc)
	day0 := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, d.loc)
	days := int64(time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC).Sub(waterEpoch()) / (24 * time.Hour))
	weeks, rest := floorDiv(days, 7), days-7*floorDiv(days, 7)
	total := float64(weeks) * d.m.weekTotal
	for i := range rest { // the days of this week before today, from Monday
		total += d.m.dayTotals[(1+i)%7]
	}
	wd := l.Weekday()
	next := time.Date(l.Year(), l.Month(), l.Day()+1, 0, 0, 0, 0, d.loc)
	dayLen := next.Sub(day0)
	leakDay := d.LeakFlow * 24
	total += leakDay * float64(t.Sub(day0)) / float64(dayLen)

	const slot = 15 * time.Minute
	n := int(dayLen / slot)
	elapsed := t.Sub(day0)
	current := int(elapsed / slot)
	frac := float64(elapsed%slot) / float64(slot)
	var all, upto float64
	for k := range n {
		start := day0.Add(time.Duration(k) * slot)
		h := (float64(k) + 0.5) / 4
		if n != 96 { // the day summer time starts or ends
			h, _ = d.local(start.Add(slot / 2))
		}
		key := uint64(start.Unix() / 900)
		w := waterUse(h, wd) * math.Exp(0.5*normal(d.unit(saltWater, key), d.unit(saltWater, ^key)))
		all += w
		switch {
		case k < current:
			upto += w
		case k == current:
			upto += frac * w
		}
	}
	if all > 0 {
		total += (d.m.dayTotals[wd] - leakDay) * upto / all
	}
	return total
}

// ---- bins ----

// Bins fill while people are about: 7:00–23:00.
const activeHoursPerDay = 16

// fill is the bin's filling level (0..1) at t: it rises with the active
// hours since the last collection (or since the demo city's reading) and
// stays at 1 when the bin is full. Before the demo city's reading it is the
// level that rose to that reading since the collection before it, so that
// a history leading up to the reading joins it.
func (d *Device) fill(t time.Time) float64 {
	last := d.lastCollection(t)
	if s := d.m.startAt; !s.IsZero() && s.After(last) {
		if !t.Before(s) {
			return math.Min(1, d.m.startFill+d.m.fillPerHour*activeHours(s, t, d.loc))
		}
		if !d.lastCollection(s).After(t) { // not emptied between t and the reading
			return math.Max(math.Min(0.02, d.m.startFill), d.m.startFill-d.m.fillPerHour*activeHours(t, s, d.loc))
		}
	}
	return math.Min(1, 0.02+d.m.fillPerHour*activeHours(last, t, d.loc))
}

// lastCollection is the latest collection at or before t, on a collection
// day or scripted (Collection).
func (d *Device) lastCollection(t time.Time) time.Time {
	last := d.lastRound(t)
	if c := d.lastScripted(t); c.After(last) {
		return c
	}
	return last
}

// lastRound is the latest collection on a collection day at or before t.
func (d *Device) lastRound(t time.Time) time.Time {
	l := t.In(d.loc)
	for k := range 22 {
		day := time.Date(l.Year(), l.Month(), l.Day()-k, 0, 0, 0, 0, d.loc)
		if !d.collects(day) {
			continue
		}
		hh := int(d.m.collectHour)
		at := time.Date(day.Year(), day.Month(), day.Day(), hh, int((d.m.collectHour-float64(hh))*60), 0, 0, d.loc)
		if !at.After(t) {
			return at
		}
	}
	return t.Add(-22 * 24 * time.Hour)
}

// collects reports whether the bin is emptied on the local day.
func (d *Device) collects(day time.Time) bool {
	wd := int(day.Weekday())
	if wd != d.m.collectDays[0] && wd != d.m.collectDays[1] {
		return false
	}
	if d.m.fortnightly {
		_, w := day.ISOWeek()
		return w%2 == d.m.collectParity
	}
	return true
}

// CollectionDays are the weekdays the bin is emptied (every other week for
// glass); nil for other kinds.
func (d *Device) CollectionDays() []time.Weekday {
	if d.Kind != WasteBin {
		return nil
	}
	var out []time.Weekday
	for _, wd := range d.m.collectDays {
		if wd >= 0 {
			out = append(out, time.Weekday(wd))
		}
	}
	return out
}

// activeHours is the time between a and b that falls within 7:00–23:00
// local time, in hours.
func activeHours(a, b time.Time, loc *time.Location) float64 {
	if !b.After(a) {
		return 0
	}
	l := a.In(loc)
	total := 0.0
	for i := 0; ; i++ {
		s := time.Date(l.Year(), l.Month(), l.Day()+i, 7, 0, 0, 0, loc)
		if !s.Before(b) {
			break
		}
		e := time.Date(l.Year(), l.Month(), l.Day()+i, 23, 0, 0, 0, loc)
		lo, hi := s, e
		if a.After(lo) {
			lo = a
		}
		if b.Before(hi) {
			hi = b
		}
		if hi.After(lo) {
			total += hi.Sub(lo).Hours()
		}
	}
	return total
}

// battery is a battery level in percent that drains over about 600 days and
// is then replaced.
func (d *Device) battery(t time.Time) int {
	const period = 600 * 24 * 3600
	off := int64(d.unit(saltBattery, 0) * period)
	frac := float64((t.Unix()+off)%period) / period
	return int(math.Round(100 - 90*frac))
}

// ---- pedestrians ----

// commuterFactor scales footfall in streets near offices and stations:
// morning and evening peaks on working days, little at weekends.
func commuterFactor(h float64, wd time.Weekday) float64 {
	if wd == time.Saturday || wd == time.Sunday {
		return 0.04 + 0.3*bell(h, 14, 3)
	}
	return 0.04 + 0.95*bell(h, 8.3, 0.8) + 0.75*bell(h, 17.6, 1.1) + 0.35*bell(h, 12.5, 1.2)
}

// pedestrians: people counted in the quarter hour ending at t, both ways.
func (d *Device) pedestrians(t time.Time, r *rand.Rand) map[string]any {
	h, wd := d.local(t.Add(-450 * time.Second))
	f := demo.ShoppingFactor(h, wd)
	towards := 0.4 + 0.2*r.Float64()
	if d.m.profile == "commuter" {
		f = commuterFactor(h, wd)
		towards = 0.5 + 0.3*(bell(h, 8.3, 1.2)-bell(h, 17.6, 1.5))
	}
	c := math.Round(d.m.level * f * lognormal(r, 0.12))
	in := math.Round(c * towards)
	return map[string]any{"c": int(c), "in": int(in), "out": int(c - in)}
}

// ---- parking ----

// parkingProb is the chance that a spot is taken at local hour h: near the
// centre spots fill on working days, further out residents park at night.
func parkingProb(h float64, wd time.Weekday, centreKm float64) float64 {
	base := 0.55 + 0.35*bell(centreKm, 0, 2.5)
	work := 1.0
	switch wd {
	case time.Saturday:
		work = 0.6
	case time.Sunday:
		work = 0.3
	}
	c := bell(centreKm, 0, 3)
	day := bell(h, 13, 4) * work
	shape := c*(0.6+0.45*day) + (1-c)*(0.9-0.25*day)
	return clamp(base*shape*1.1, 0.05, 0.97)
}

// parking: the spot's status, drawn for each 20-minute slot.
func (d *Device) parking(t time.Time, r *rand.Rand) map[string]any {
	h, wd := d.local(t)
	status := "free"
	if d.unit(saltParking, uint64(floorDiv(t.Unix(), 1200))) < parkingProb(h, wd, d.m.centreKm) {
		status = "occupied"
	}
	return map[string]any{"s": status, "b": d.battery(t), "t": round(d.outdoorTemp(t, r)+1.5, 1)}
}

// ---- air and noise ----

// traffic is the road-traffic factor at local hour h (demo.TrafficFactor),
// with less traffic at weekends.
func traffic(h float64, wd time.Weekday) float64 {
	f := demo.TrafficFactor(h)
	switch wd {
	case time.Saturday:
		f = 0.55 + (f-0.55)*0.7
	case time.Sunday:
		f = 0.55 + (f-0.55)*0.45
	}
	return f
}

func (d *Device) air(t time.Time, r *rand.Rand) map[string]any {
	h, wd := d.local(t)
	tf := traffic(h, wd)
	if d.m.profile == "background" {
		tf = 0.5 + 0.5*tf
	}
	return map[string]any{
		"no2":  round(d.m.level*tf*lognormal(r, 0.15), 1),
		"pm10": round((12+0.2*d.m.level)*(0.8+0.25*tf)*lognormal(r, 0.2), 1),
		"t":    round(d.outdoorTemp(t, r), 1),
	}
}

// noise: LAeq, LAmax and LAS over the quarter hour ending at t, dB(A).
func (d *Device) noise(t time.Time, r *rand.Rand) map[string]any {
	h, wd := d.local(t.Add(-450 * time.Second))
	la := d.m.level + 6*math.Log10(traffic(h, wd)/1.1) + r.NormFloat64()
	if h < 6 || h >= 23 {
		la -= 6
	}
	return map[string]any{
		"la":   round(la, 1),
		"lmax": round(la+12+8*r.Float64(), 1),
		"las":  round(la+3+10*r.Float64(), 1),
	}
}

// outdoorTemp is the air temperature in Brussels: seasons, a daily swing,
// and some noise.
func (d *Device) outdoorTemp(t time.Time, r *rand.Rand) float64 {
	l := t.In(d.loc)
	h := float64(l.Hour()) + float64(l.Minute())/60
	doy := float64(l.YearDay())
	return 11 + 8*math.Sin(2*math.Pi*(doy-110)/365.25) + 3*math.Sin(2*math.Pi*(h-9)/24) + 0.5*r.NormFloat64()
}

// ---- helpers ----

// local is the wall-clock hour (13.5 is 13:30) and weekday in Brussels.
func (d *Device) local(t time.Time) (float64, time.Weekday) {
	l := t.In(d.loc)
	return float64(l.Hour()) + float64(l.Minute())/60 + float64(l.Second())/3600, l.Weekday()
}

// rand is the random stream of the device's reading at t.
func (d *Device) rand(t time.Time) *rand.Rand {
	return rand.New(rand.NewPCG(d.seed^saltReading, mix64(uint64(t.UnixMilli()))))
}

// unit is a uniform number in [0, 1) fixed by the device, salt and key.
func (d *Device) unit(salt, key uint64) float64 {
	return float64(mix64(d.seed^mix64(salt^mix64(key)))>>11) / (1 << 53)
}

// hashUnit is a uniform number in [0, 1) fixed by s.
func hashUnit(s string) float64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return float64(mix64(h.Sum64())>>11) / (1 << 53)
}

// mix64 is SplitMix64's finaliser.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// normal turns two uniform numbers into a standard normal one (Box-Muller).
func normal(u1, u2 float64) float64 {
	return math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2)
}

// lognormal is a multiplicative jitter around 1 with the given spread.
func lognormal(r *rand.Rand, spread float64) float64 { return math.Exp(r.NormFloat64() * spread) }

func bell(x, mean, sd float64) float64 { return math.Exp(-(x - mean) * (x - mean) / (2 * sd * sd)) }

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// timestamp is how readings carry their time ("ts"): RFC 3339, UTC, ms.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
