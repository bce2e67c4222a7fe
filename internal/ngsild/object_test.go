package ngsild

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// encodingJSON is what encoding/json writes without HTML escaping.
func encodingJSON(t testing.TB, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, 0.0, math.Copysign(0, -1), 1.5, 1e21, 1e-7, 123456789.0, 5e-324, 1.7976931348623157e308, 42, int64(-7),
		"", "plain", `quote " and \ backslash`, "tab\tnew\nline\r", "\x00\x1f control", "<a href='x'>&</a>",
		"ünïcödé €", "bad \xff utf8", "line\u2028sep\u2029", []string{"a", "b"}, []string(nil),
		map[string]any{"z": 1.0, "a": []any{"x", nil, false, map[string]any{}}},
		[]Kind{Property, Relationship},
	}
	for _, v := range values {
		got, err := AppendJSON(nil, v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		if want := encodingJSON(t, v); !bytes.Equal(got, want) {
			t.Errorf("%#v:\n got %s\nwant %s", v, got, want)
		}
	}
	obj := Object{{"id", "urn:x"}, {"b", 2.0}, {"a", Object{{"n", nil}}}}
	got, _ := AppendJSON(nil, obj)
	if string(got) != `{"id":"urn:x","b":2,"a":{"n":null}}` {
		t.Fatalf("object keeps order: %s", got)
	}
}

// FuzzAppendJSON: for any decoded JSON document, AppendJSON writes what
// encoding/json writes.
func FuzzAppendJSON(f *testing.F) {
	f.Add(`{"a":[1,2.5,"x\u0000<>",null,true,{"b":1e300}]}`)
	f.Add(`"\ud800"`)
	f.Add(`[1e-7, 0.000001, 100000000000000000000000, -0]`)
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		got, err := AppendJSON(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		if want := encodingJSON(t, v); !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkRenderEntity(b *testing.B) {
	var m map[string]any
	json.Unmarshal([]byte(`{"id":"urn:ngsi-ld:Bin:1","type":"Bin",
	  "level":{"type":"Property","value":0.5,"unitCode":"P1","observedAt":"2026-01-02T03:04:05Z"},
	  "name":{"type":"Property","value":"Grand-Place <north>"},
	  "owner":{"type":"Relationship","object":"urn:ngsi-ld:Dept:1"},
	  "location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[4.35,50.85]}}}`), &m)
	e, err := ParseEntity(m, testCtx{}, ParseOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(Render(e, RenderOptions{Compact: testCtx{}})); err != nil {
			b.Fatal(err)
		}
	}
}

// ProblemDetails bodies keep the comparison signs of q expressions as they
// are, and leave out an empty detail, as encoding/json's omitempty would.
func TestErrorObject(t *testing.T) {
	e := Errorf(BadRequestData, "q: %s", "a>1&b<2")
	data, err := Marshal(e.Object())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"type":"https://uri.etsi.org/ngsi-ld/errors/BadRequestData","title":"Bad request data","detail":"q: a>1&b<2"}`; string(data) != want {
		t.Errorf("got %s\nwant %s", data, want)
	}
	data, _ = Marshal((&Error{Type: e.Type, Title: e.Title}).Object())
	if strings.Contains(string(data), "detail") {
		t.Errorf("empty detail written: %s", data)
	}
}
