package geo

import (
	"math"
	"slices"

	"github.com/paulmach/orb"
	orbgeo "github.com/paulmach/orb/geo"
)

// The planar predicates work on lon/lat as Cartesian coordinates, like
// GeoJSON (RFC 7946, 3.1.1) and most spatial databases do for geometry types.
// A geometry is flattened into its points, lines and polygons; collections
// and Multi* geometries are the union of their parts (see the package tests
// for what "pragmatic" means at the edges).

// eps is the tolerance, in degrees, for "on a segment" (about 0.1 µm).
const eps = 1e-12

type seg struct{ a, b orb.Point }

// location of a point relative to a geometry (DE-9IM: interior, boundary, exterior).
type location int8

const (
	exterior location = iota
	boundary
	interior
)

// shape is a geometry prepared for the predicates. It is never changed after
// prepare, so a query's shape can be shared by concurrent Match calls.
type shape struct {
	pts    []orb.Point
	lines  []orb.LineString
	polys  []orb.Polygon
	pbound []orb.Bound // bound of each polygon
	pip    []orb.Point // an interior point of each polygon
	pipOK  []bool      // whether pip was found (false for degenerate polygons)
	segs   []seg       // every segment of lines and polygon rings
	bound  orb.Bound
	dim    int // highest dimension present: 0 points, 1 lines, 2 polygons; -1 empty
}

func prepare(g orb.Geometry) *shape {
	s := &shape{dim: -1}
	s.add(g)
	first := true
	grow := func(b orb.Bound) {
		if first {
			s.bound, first = b, false
		} else {
			s.bound = s.bound.Union(b)
		}
	}
	for _, p := range s.pts {
		grow(p.Bound())
	}
	for _, l := range s.lines {
		grow(l.Bound())
		for i := 0; i+1 < len(l); i++ {
			s.segs = append(s.segs, seg{l[i], l[i+1]})
		}
	}
	for _, p := range s.polys {
		b := p.Bound()
		grow(b)
		s.pbound = append(s.pbound, b)
		ip, ok := interiorPoint(p)
		s.pip, s.pipOK = append(s.pip, ip), append(s.pipOK, ok)
		for _, r := range p {
			for i := 0; i+1 < len(r); i++ {
				s.segs = append(s.segs, seg{r[i], r[i+1]})
			}
		}
	}
	return s
}

func (s *shape) add(g orb.Geometry) {
	switch x := g.(type) {
	case orb.Point:
		s.pts = append(s.pts, x)
		s.dim = max(s.dim, 0)
	case orb.MultiPoint:
		s.pts = append(s.pts, x...)
		if len(x) > 0 {
			s.dim = max(s.dim, 0)
		}
	case orb.LineString:
		if len(x) > 0 {
			s.lines = append(s.lines, x)
			s.dim = max(s.dim, 1)
		}
	case orb.MultiLineString:
		for _, l := range x {
			s.add(l)
		}
	case orb.Ring:
		s.add(orb.Polygon{x})
	case orb.Polygon:
		if len(x) > 0 && len(x[0]) > 0 {
			s.polys = append(s.polys, x)
			s.dim = 2
		}
	case orb.MultiPolygon:
		for _, p := range x {
			s.add(p)
		}
	case orb.Collection:
		for _, c := range x {
			s.add(c)
		}
	case orb.Bound:
		s.add(x.ToPolygon())
	}
}

// ---- primitives ----

func cross(o, a, b orb.Point) float64 {
	return (a[0]-o[0])*(b[1]-o[1]) - (a[1]-o[1])*(b[0]-o[0])
}

func segBound(a, b orb.Point) orb.Bound {
	return orb.Bound{
		Min: orb.Point{math.Min(a[0], b[0]), math.Min(a[1], b[1])},
		Max: orb.Point{math.Max(a[0], b[0]), math.Max(a[1], b[1])},
	}
}

func boundsTouch(a, b orb.Bound) bool {
	return a.Min[0] <= b.Max[0]+eps && b.Min[0] <= a.Max[0]+eps &&
		a.Min[1] <= b.Max[1]+eps && b.Min[1] <= a.Max[1]+eps
}

// onSegment reports whether p lies on segment ab (within eps).
func onSegment(p, a, b orb.Point) bool {
	if !inRange(p[0], a[0], b[0]) || !inRange(p[1], a[1], b[1]) {
		return false
	}
	l := math.Hypot(b[0]-a[0], b[1]-a[1])
	if l == 0 {
		return math.Abs(p[0]-a[0]) <= eps && math.Abs(p[1]-a[1]) <= eps
	}
	return math.Abs(cross(a, b, p)) <= eps*l
}

// inRange reports whether v lies between a and b (either order, within eps).
func inRange(v, a, b float64) bool {
	if a > b {
		a, b = b, a
	}
	return v >= a-eps && v <= b+eps
}

// segsIntersect reports whether segments ab and cd share a point.
func segsIntersect(a, b, c, d orb.Point) bool {
	if !boundsTouch(segBound(a, b), segBound(c, d)) {
		return false
	}
	if onSegment(a, c, d) || onSegment(b, c, d) || onSegment(c, a, b) || onSegment(d, a, b) {
		return true
	}
	d1, d2 := cross(c, d, a), cross(c, d, b)
	d3, d4 := cross(a, b, c), cross(a, b, d)
	return ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))
}

// ringLocation locates p relative to a closed ring (as a simple polygon).
func ringLocation(p orb.Point, r orb.Ring) location {
	in := false
	for i := 0; i+1 < len(r); i++ {
		a, b := r[i], r[i+1]
		if !inRange(p[1], a[1], b[1]) {
			continue // neither on the edge nor crossing its latitude
		}
		if onSegment(p, a, b) {
			return boundary
		}
		if (a[1] > p[1]) != (b[1] > p[1]) {
			x := a[0] + (p[1]-a[1])*(b[0]-a[0])/(b[1]-a[1])
			if p[0] < x {
				in = !in
			}
		}
	}
	if in {
		return interior
	}
	return exterior
}

// polygonLocation locates p relative to a polygon with holes.
func polygonLocation(p orb.Point, pg orb.Polygon) location {
	l := ringLocation(p, pg[0])
	if l != interior {
		return l
	}
	for _, h := range pg[1:] {
		switch ringLocation(p, h) {
		case boundary:
			return boundary
		case interior:
			return exterior
		}
	}
	return interior
}

// locate finds p relative to the union of s's parts: interior if it is in the
// interior of any part, else boundary if on the boundary of any part.
func (s *shape) locate(p orb.Point) location {
	if !boundsTouch(s.bound, orb.Bound{Min: p, Max: p}) {
		return exterior
	}
	res := exterior
	for i, pg := range s.polys {
		if !boundsTouch(s.pbound[i], orb.Bound{Min: p, Max: p}) {
			continue
		}
		switch polygonLocation(p, pg) {
		case interior:
			return interior
		case boundary:
			res = boundary
		}
	}
	for _, l := range s.lines {
		closed := len(l) > 2 && l[0] == l[len(l)-1]
		for i := 0; i+1 < len(l); i++ {
			if !onSegment(p, l[i], l[i+1]) {
				continue
			}
			if !closed && (samePoint(p, l[0]) || samePoint(p, l[len(l)-1])) {
				res = boundary
				continue
			}
			return interior
		}
	}
	for _, q := range s.pts {
		if samePoint(p, q) {
			return interior
		}
	}
	return res
}

func samePoint(a, b orb.Point) bool {
	return math.Abs(a[0]-b[0]) <= eps && math.Abs(a[1]-b[1]) <= eps
}

// pieces calls f with a point inside each piece of segment ab cut at every
// point where it meets a segment of segs; f returns false to stop. pieces
// reports whether it ran to the end.
func pieces(a, b orb.Point, segs []seg, f func(orb.Point) bool) bool {
	dx, dy := b[0]-a[0], b[1]-a[1]
	l2 := dx*dx + dy*dy
	if l2 == 0 {
		return f(a)
	}
	sb := segBound(a, b)
	ts := []float64{0, 1}
	param := func(p orb.Point) float64 { return ((p[0]-a[0])*dx + (p[1]-a[1])*dy) / l2 }
	for _, s := range segs {
		if !boundsTouch(sb, segBound(s.a, s.b)) {
			continue
		}
		if onSegment(s.a, a, b) {
			ts = append(ts, param(s.a))
		}
		if onSegment(s.b, a, b) {
			ts = append(ts, param(s.b))
		}
		ex, ey := s.b[0]-s.a[0], s.b[1]-s.a[1]
		den := dx*ey - dy*ex
		if den == 0 {
			continue
		}
		t := ((s.a[0]-a[0])*ey - (s.a[1]-a[1])*ex) / den
		u := ((s.a[0]-a[0])*dy - (s.a[1]-a[1])*dx) / den
		if t > 0 && t < 1 && u >= 0 && u <= 1 {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	for i := 0; i+1 < len(ts); i++ {
		t0, t1 := math.Max(ts[i], 0), math.Min(ts[i+1], 1)
		if t1-t0 <= 1e-12 {
			continue
		}
		tm := (t0 + t1) / 2
		if !f(orb.Point{a[0] + tm*dx, a[1] + tm*dy}) {
			return false
		}
	}
	return true
}

// interiorPoint finds a point strictly inside pg: the middle of the widest
// inside stretch of a horizontal line that passes through no vertex.
func interiorPoint(pg orb.Polygon) (orb.Point, bool) {
	b := pg[0].Bound()
	if b.Min[1] >= b.Max[1] {
		return orb.Point{}, false
	}
	c := (b.Min[1] + b.Max[1]) / 2
	lo, hi := b.Min[1], b.Max[1]
	for _, r := range pg {
		for _, p := range r {
			if p[1] <= c && p[1] > lo {
				lo = p[1]
			}
			if p[1] > c && p[1] < hi {
				hi = p[1]
			}
		}
	}
	y := (lo + hi) / 2
	var xs []float64
	for _, r := range pg {
		for i := 0; i+1 < len(r); i++ {
			a, bb := r[i], r[i+1]
			if (a[1] > y) != (bb[1] > y) {
				xs = append(xs, a[0]+(y-a[1])*(bb[0]-a[0])/(bb[1]-a[1]))
			}
		}
	}
	slices.Sort(xs)
	best, bx := 0.0, 0.0
	for i := 0; i+1 < len(xs); i += 2 {
		if w := xs[i+1] - xs[i]; w > best {
			best, bx = w, (xs[i]+xs[i+1])/2
		}
	}
	if best <= 0 {
		return orb.Point{}, false
	}
	p := orb.Point{bx, y}
	return p, polygonLocation(p, pg) == interior
}

// ---- predicates ----

func intersects(a, b *shape) bool {
	if a.dim < 0 || b.dim < 0 || !boundsTouch(a.bound, b.bound) {
		return false
	}
	for _, p := range a.pts {
		if b.locate(p) != exterior {
			return true
		}
	}
	for _, p := range b.pts {
		if a.locate(p) != exterior {
			return true
		}
	}
	for _, s := range a.segs {
		if !boundsTouch(segBound(s.a, s.b), b.bound) {
			continue
		}
		for _, t := range b.segs {
			if segsIntersect(s.a, s.b, t.a, t.b) {
				return true
			}
		}
	}
	// No boundaries meet: one may still lie inside the other.
	for _, l := range a.lines {
		if b.locate(l[0]) != exterior {
			return true
		}
	}
	for _, pg := range a.polys {
		if b.locate(pg[0][0]) != exterior {
			return true
		}
	}
	for _, l := range b.lines {
		if a.locate(l[0]) != exterior {
			return true
		}
	}
	for _, pg := range b.polys {
		if a.locate(pg[0][0]) != exterior {
			return true
		}
	}
	return false
}

// cover reports whether every point of a lies in b (covered) and whether the
// interiors of a and b meet (interiorHit). a is within b when both hold.
func cover(a, b *shape) (covered, interiorHit bool) {
	if a.dim < 0 || b.dim < 0 || a.dim > b.dim {
		return false, false
	}
	if !boundsTouch(b.bound, a.bound.Min.Bound()) || !boundsTouch(b.bound, a.bound.Max.Bound()) {
		return false, false
	}
	for _, p := range a.pts {
		switch b.locate(p) {
		case exterior:
			return false, false
		case interior:
			interiorHit = true
		}
	}
	check := func(p orb.Point) bool {
		switch b.locate(p) {
		case exterior:
			return false
		case interior:
			interiorHit = true
		}
		return true
	}
	for _, l := range a.lines {
		for i := 0; i+1 < len(l); i++ {
			if !pieces(l[i], l[i+1], b.segs, check) {
				return false, false
			}
		}
	}
	for i, pg := range a.polys {
		for _, r := range pg {
			for j := 0; j+1 < len(r); j++ {
				if !pieces(r[j], r[j+1], b.segs, check) {
					return false, false
				}
			}
		}
		if a.pipOK[i] && !check(a.pip[i]) {
			return false, false
		}
		// No boundary of b may run through the inside of pg: there would be
		// points of pg outside b next to it.
		pgSegs := ringSegs(pg)
		for k, bp := range b.polys {
			if !boundsTouch(b.pbound[k], a.pbound[i]) {
				continue
			}
			for _, r := range bp {
				for j := 0; j+1 < len(r); j++ {
					if !boundsTouch(segBound(r[j], r[j+1]), a.pbound[i]) {
						continue
					}
					inside := !pieces(r[j], r[j+1], pgSegs, func(p orb.Point) bool {
						return polygonLocation(p, pg) != interior
					})
					if inside {
						return false, false
					}
				}
			}
		}
	}
	return true, interiorHit
}

func ringSegs(pg orb.Polygon) []seg {
	var out []seg
	for _, r := range pg {
		for i := 0; i+1 < len(r); i++ {
			out = append(out, seg{r[i], r[i+1]})
		}
	}
	return out
}

// within reports whether a is within b (DE-9IM: a ⊆ b and their interiors meet).
func within(a, b *shape) bool {
	c, i := cover(a, b)
	return c && i
}

// overlaps reports whether a and b have the same dimension, their interiors
// meet, and neither covers the other.
func overlaps(a, b *shape) bool {
	if a.dim != b.dim || a.dim < 0 || !boundsTouch(a.bound, b.bound) {
		return false
	}
	if !interiorsMeet(a, b) {
		return false
	}
	if c, _ := cover(a, b); c {
		return false
	}
	c, _ := cover(b, a)
	return !c
}

func interiorsMeet(a, b *shape) bool {
	switch a.dim {
	case 0:
		for _, p := range a.pts {
			if b.locate(p) == interior {
				return true
			}
		}
	case 1:
		hit := false
		for _, l := range a.lines {
			for i := 0; i+1 < len(l) && !hit; i++ {
				pieces(l[i], l[i+1], b.segs, func(p orb.Point) bool {
					hit = b.locate(p) == interior
					return !hit
				})
			}
		}
		return hit
	case 2:
		return polysInteriorHit(a, b) || polysInteriorHit(b, a)
	}
	return false
}

// polysInteriorHit reports whether a's polygon boundaries or interior points
// fall in the interior of b's polygons.
func polysInteriorHit(a, b *shape) bool {
	inB := func(p orb.Point) bool {
		for k, pg := range b.polys {
			if boundsTouch(b.pbound[k], p.Bound()) && polygonLocation(p, pg) == interior {
				return true
			}
		}
		return false
	}
	for i, pg := range a.polys {
		if a.pipOK[i] && inB(a.pip[i]) {
			return true
		}
		for _, r := range pg {
			for j := 0; j+1 < len(r); j++ {
				if !pieces(r[j], r[j+1], b.segs, func(p orb.Point) bool { return !inB(p) }) {
					return true
				}
			}
		}
	}
	return false
}

// equalGeometry reports whether a and b are the same geometry: the same
// coordinates within tol, or covering each other (same point set, e.g. a ring
// starting elsewhere or wound the other way).
func equalGeometry(a, b orb.Geometry, tol float64) bool {
	if sameCoords(a, b, tol) {
		return true
	}
	sa, sb := prepare(a), prepare(b)
	if sa.dim != sb.dim || sa.dim < 0 {
		return false
	}
	if !samePointTol(sa.bound.Min, sb.bound.Min, tol) || !samePointTol(sa.bound.Max, sb.bound.Max, tol) {
		return false
	}
	c1, _ := cover(sa, sb)
	if !c1 {
		return false
	}
	c2, _ := cover(sb, sa)
	return c2
}

func samePointTol(a, b orb.Point, tol float64) bool {
	return math.Abs(a[0]-b[0]) <= tol && math.Abs(a[1]-b[1]) <= tol
}

func samePoints(a, b []orb.Point, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !samePointTol(a[i], b[i], tol) {
			return false
		}
	}
	return true
}

func sameCoords(a, b orb.Geometry, tol float64) bool {
	switch x := a.(type) {
	case orb.Point:
		y, ok := b.(orb.Point)
		return ok && samePointTol(x, y, tol)
	case orb.MultiPoint:
		y, ok := b.(orb.MultiPoint)
		return ok && samePoints(x, y, tol)
	case orb.LineString:
		y, ok := b.(orb.LineString)
		return ok && samePoints(x, y, tol)
	case orb.MultiLineString:
		y, ok := b.(orb.MultiLineString)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !samePoints(x[i], y[i], tol) {
				return false
			}
		}
		return true
	case orb.Polygon:
		y, ok := b.(orb.Polygon)
		return ok && samePolygon(x, y, tol)
	case orb.MultiPolygon:
		y, ok := b.(orb.MultiPolygon)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !samePolygon(x[i], y[i], tol) {
				return false
			}
		}
		return true
	case orb.Collection:
		y, ok := b.(orb.Collection)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameCoords(x[i], y[i], tol) {
				return false
			}
		}
		return true
	}
	return false
}

func samePolygon(x, y orb.Polygon, tol float64) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !samePoints(x[i], y[i], tol) {
			return false
		}
	}
	return true
}

// ---- distance ----

// distance is the shortest distance in meters from p to s on a sphere of
// orb.EarthRadius: 0 inside a polygon, haversine to points, and to the
// nearest point of each segment (found in a local equirectangular projection
// around p, then measured with haversine).
func distance(p orb.Point, s *shape) float64 {
	for i, pg := range s.polys {
		if s.pbound[i].Contains(p) && polygonLocation(p, pg) != exterior {
			return 0
		}
	}
	best := math.Inf(1)
	for _, q := range s.pts {
		best = math.Min(best, orbgeo.DistanceHaversine(p, q))
	}
	kx := math.Cos(p[1] * math.Pi / 180)
	for _, sg := range s.segs {
		best = math.Min(best, segDistance(p, sg.a, sg.b, kx))
	}
	return best
}

func segDistance(p, a, b orb.Point, kx float64) float64 {
	ax, ay := (a[0]-p[0])*kx, a[1]-p[1]
	bx, by := (b[0]-p[0])*kx, b[1]-p[1]
	dx, dy := bx-ax, by-ay
	l2 := dx*dx + dy*dy
	t := 0.0
	if l2 > 0 {
		t = math.Max(0, math.Min(1, -(ax*dx+ay*dy)/l2))
	}
	c := orb.Point{a[0] + t*(b[0]-a[0]), a[1] + t*(b[1]-a[1])}
	d := orbgeo.DistanceHaversine(p, c)
	return math.Min(d, math.Min(orbgeo.DistanceHaversine(p, a), orbgeo.DistanceHaversine(p, b)))
}
