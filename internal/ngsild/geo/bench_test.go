package geo

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func BenchmarkMatchPointNearPoint(b *testing.B) {
	q, err := ParseQuery("near;maxDistance==6000", "Point", coords(grandPlace), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	e := entity(b, pointJSON(atomium))
	b.ReportAllocs()
	for b.Loop() {
		if !q.Match(e) {
			b.Fatal("no match")
		}
	}
}

// circleCoords is a closed ring of n vertices around the Grand-Place.
func circleCoords(n int) string {
	var sb strings.Builder
	sb.WriteString("[[")
	for i := 0; i <= n; i++ {
		a := 2 * math.Pi * float64(i%n) / float64(n)
		r := 0.02 * (1 + 0.2*math.Sin(7*a)) // a wavy, non-convex ring
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "[%.8f,%.8f]", grandPlace[0]+r*math.Cos(a), grandPlace[1]+r*math.Sin(a))
	}
	sb.WriteString("]]")
	return sb.String()
}

func BenchmarkMatchPointWithinPolygon1000(b *testing.B) {
	q, err := ParseQuery("within", "Polygon", circleCoords(1000), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	e := entity(b, `{"type":"Point","coordinates":[4.36,50.85]}`)
	b.ReportAllocs()
	for b.Loop() {
		if !q.Match(e) {
			b.Fatal("no match")
		}
	}
}

func BenchmarkMatchPolygonIntersectsPolygon1000(b *testing.B) {
	q, err := ParseQuery("intersects", "Polygon", circleCoords(1000), "", nil)
	if err != nil {
		b.Fatal(err)
	}
	e := entity(b, polyJSON(square(4.30, 50.80, 4.40, 50.90)))
	b.ReportAllocs()
	for b.Loop() {
		if !q.Match(e) {
			b.Fatal("no match")
		}
	}
}
