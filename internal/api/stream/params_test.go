package stream

import (
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/paulmach/orb"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
)

func TestParseParams(t *testing.T) {
	core := jsonld.NewResolver(jsonld.Options{}).Core()
	p, err := parseParams(url.Values{
		"type":        {"Bin, https://example.org/Sensor"},
		"id":          {"urn:a:1,urn:a:2"},
		"idPattern":   {"^urn:a:"},
		"bbox":        {" 4.2, 50.7,4.5 ,51"},
		"attrs":       {"fillLevel,location,fillLevel"},
		"format":      {"concise"},
		"lastEventId": {"42"},
	}, http.Header{"Ngsild-Tenant": {"t1"}}, core)
	if err != nil {
		t.Fatal(err)
	}
	ns := ngsild.DefaultContextNS
	if !p.types[ns+"Bin"] || !p.types["https://example.org/Sensor"] || len(p.types) != 2 {
		t.Errorf("types %v", p.types)
	}
	if !p.ids["urn:a:2"] || len(p.ids) != 2 || p.idPattern.String() != "^urn:a:" {
		t.Errorf("ids %v pattern %v", p.ids, p.idPattern)
	}
	if *p.bbox != (bbox{4.2, 50.7, 4.5, 51}) {
		t.Errorf("bbox %+v", p.bbox)
	}
	if strings.Join(p.attrs, " ") != ns+"fillLevel "+ngsild.IRILocation {
		t.Errorf("attrs %v", p.attrs)
	}
	if p.format != ngsild.Concise || p.tenant != "t1" || !p.resume || p.after != 42 {
		t.Errorf("format %v tenant %q resume %v after %d", p.format, p.tenant, p.resume, p.after)
	}

	p, err = parseParams(url.Values{}, http.Header{}, core)
	if err != nil || p.format != ngsild.KeyValues || p.resume || p.types != nil || p.attrs != nil || p.bbox != nil {
		t.Errorf("defaults: %+v %v", p, err)
	}
}

func TestBBoxIntersects(t *testing.T) {
	pt := func(x, y float64) orb.Bound { return orb.Point{x, y}.Bound() }
	cases := []struct {
		name string
		box  bbox
		b    orb.Bound
		want bool
	}{
		{"point inside", bbox{0, 0, 10, 10}, pt(5, 5), true},
		{"point on the edge", bbox{0, 0, 10, 10}, pt(10, 0), true},
		{"point east", bbox{0, 0, 10, 10}, pt(11, 5), false},
		{"point north", bbox{0, 0, 10, 10}, pt(5, 11), false},
		{"line crossing", bbox{0, 0, 10, 10}, orb.Bound{Min: orb.Point{-5, 5}, Max: orb.Point{15, 6}}, true},
		{"polygon around", bbox{0, 0, 10, 10}, orb.Bound{Min: orb.Point{-50, -50}, Max: orb.Point{50, 50}}, true},
		{"antimeridian east part", bbox{170, -10, -170, 10}, pt(175, 0), true},
		{"antimeridian west part", bbox{170, -10, -170, 10}, pt(-175, 0), true},
		{"antimeridian outside", bbox{170, -10, -170, 10}, pt(0, 0), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.box.intersects(tc.b); got != tc.want {
				t.Errorf("got %v", got)
			}
		})
	}
}

// FuzzParseParams: any query and headers give either params or a
// BadRequestData error, never a panic, and what is accepted is sound.
func FuzzParseParams(f *testing.F) {
	core := jsonld.NewResolver(jsonld.Options{}).Core()
	f.Add("Bin,Car", "urn:a:1", "^urn:", "4.2,50.7,4.5,51", "fillLevel,location", "keyValues", "", "12", "")
	f.Add("", "", "", "170,-10,-170,10", "", "concise", "t", "", "7")
	f.Add(",", ",,", "([", "1,2,3", "a b", "xml", "a/b", "-1", "x")
	f.Add("https://example.org/T", "urn:x", "", "NaN,0,0,0", "https://example.org/a", "normalized", "", "18446744073709551615", "")
	f.Add("Bin", "", ".*", " -180 , -90 ,180,90", "n", "simplified", "_x.y-z", "0", "")
	f.Add("Bin", "", "", "1e400,0,0,0", "", "", "", "", "99999999999999999999")
	f.Fuzz(func(t *testing.T, typ, id, pattern, bb, attrs, format, tenant, lastID, hdrID string) {
		q := url.Values{}
		for name, v := range map[string]string{"type": typ, "id": id, "idPattern": pattern, "bbox": bb,
			"attrs": attrs, "format": format, "tenant": tenant, "lastEventId": lastID} {
			if v != "" {
				q.Set(name, v)
			}
		}
		h := http.Header{}
		if hdrID != "" {
			h.Set("Last-Event-ID", hdrID)
		}
		p, err := parseParams(q, h, core)
		if err != nil {
			e, ok := err.(*ngsild.Error)
			if !ok || e.Type != ngsild.BadRequestData || e.Detail == "" {
				t.Fatalf("error %#v", err)
			}
			return
		}
		if p.bbox != nil {
			for _, x := range []float64{p.bbox.west, p.bbox.south, p.bbox.east, p.bbox.north} {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					t.Fatalf("bbox %+v", p.bbox)
				}
			}
			if p.bbox.south > p.bbox.north || math.Abs(p.bbox.west) > 180 || math.Abs(p.bbox.north) > 90 || math.Abs(p.bbox.south) > 90 {
				t.Fatalf("bbox %+v", p.bbox)
			}
		}
		for iri := range p.types {
			if iri == "" {
				t.Fatal("empty type")
			}
		}
		if len(p.attrs) != len(p.attrSet) {
			t.Fatalf("attrs %v set %v", p.attrs, p.attrSet)
		}
		for _, a := range p.attrs {
			if !p.attrSet[a] || a == "" {
				t.Fatalf("attrs %v", p.attrs)
			}
		}
		if (typ != "" && p.types == nil) || (attrs != "" && p.attrs == nil) || (id != "" && p.ids == nil) {
			t.Fatal("a given list was dropped")
		}
		if p.tenant != "" && !ngsild.ValidTenant(p.tenant) {
			t.Fatalf("tenant %q", p.tenant)
		}
		if p.format != ngsild.KeyValues && p.format != ngsild.Normalized && p.format != ngsild.Concise {
			t.Fatalf("format %v", p.format)
		}
		// A view key tells representations apart.
		if viewKey(p) == "" {
			t.Fatal("empty view key")
		}
	})
}
