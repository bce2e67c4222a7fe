package geo

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Brussels landmarks.
var (
	grandPlace = [2]float64{4.3525, 50.8467}
	atomium    = [2]float64{4.3416, 50.8949}
)

func decode(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return v
}

func pointJSON(p [2]float64) string {
	return fmt.Sprintf(`{"type":"Point","coordinates":[%v,%v]}`, p[0], p[1])
}

// square is a closed ring of the box, counter-clockwise.
func square(x0, y0, x1, y1 float64) string {
	return fmt.Sprintf(`[[%v,%v],[%v,%v],[%v,%v],[%v,%v],[%v,%v]]`, x0, y0, x1, y0, x1, y1, x0, y1, x0, y0)
}

func polyJSON(rings ...string) string {
	s := `{"type":"Polygon","coordinates":[`
	for i, r := range rings {
		if i > 0 {
			s += ","
		}
		s += r
	}
	return s + "]}"
}

func entity(t testing.TB, geoms ...string) *ngsild.Entity {
	e := &ngsild.Entity{ID: "urn:ngsi-ld:Thing:1", Types: []string{"https://example.org/Thing"}, Attrs: map[string][]*ngsild.Attribute{}}
	for i, g := range geoms {
		e.Attrs[ngsild.IRILocation] = append(e.Attrs[ngsild.IRILocation], &ngsild.Attribute{
			Kind: ngsild.GeoProperty, Value: decode(t, g), DatasetID: fmt.Sprintf("urn:ds:%d", i),
		})
	}
	return e
}
