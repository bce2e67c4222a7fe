package ngsildapi_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/apitest"
)

// The Smart Data Models examples under testdata/sdm (CC-BY-4.0, Smart Data
// Models Program; see testdata/sdm/SOURCES.md) load, read back and are found
// by queries. Their @contexts are the SDM domain contexts that zenne embeds,
// so nothing is fetched from the network.

type sdmExample struct {
	path  string         // relative to testdata/sdm
	raw   []byte         // the file as is
	body  map[string]any // decoded
	id    string
	typ   string
	link  string // the model's @context URL, for the Link header ("" if only the core context)
	model string // Domain/Model
}

const coreContextPrefix = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context"

func loadSDM(t *testing.T, name string) []sdmExample {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "sdm", "*", "*", name))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s under testdata/sdm: %v", name, err)
	}
	sort.Strings(files)
	var out []sdmExample
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		rel, _ := filepath.Rel(filepath.Join("testdata", "sdm"), f)
		ex := sdmExample{path: filepath.ToSlash(rel), raw: raw, body: body, model: filepath.ToSlash(filepath.Dir(rel))}
		ex.id, _ = body["id"].(string)
		ex.typ, _ = body["type"].(string)
		var ctxs []any
		switch c := body["@context"].(type) {
		case string:
			ctxs = []any{c}
		case []any:
			ctxs = c
		}
		for _, c := range ctxs {
			if s, ok := c.(string); ok && !strings.HasPrefix(s, coreContextPrefix) {
				ex.link = s
			}
		}
		out = append(out, ex)
	}
	return out
}

// sdmInvalid lists the examples that are not valid NGSI-LD, with the error
// zenne must answer and why.
var sdmInvalid = map[string]struct{ errType, why string }{
	// Attributes typed "number", "boolean", "string", "object" and
	// "Geoproperty": NGSI-LD attribute types are Property, Relationship,
	// GeoProperty, LanguageProperty, JsonProperty, VocabProperty, ListProperty
	// and ListRelationship (ETSI GS CIM 009, 4.5), case-sensitive.
	"TourismDestinations/Event/example-normalized.jsonld": {"BadRequestData", "attribute types number/boolean/string/object/Geoproperty"},
	// Relationship creator has "object": [""]: an empty string is not a URI
	// (4.5.2: the object of a Relationship is a URI).
	"DCAT-AP/Catalogue/example-normalized.jsonld": {"BadRequestData", `Relationship object ""`},
}

// sdmIgnored lists attributes of examples that zenne does not keep as
// attributes, and why.
var sdmIgnored = map[string]string{
	// modifiedAt is a reserved, system-generated member of an entity (4.8):
	// a client's value is not an attribute.
	"KeyPerformanceIndicator/KeyPerformanceIndicator:modifiedAt": "reserved system attribute",
}

func sdmLink(ex sdmExample) map[string]string {
	if ex.link == "" {
		return nil
	}
	return map[string]string{"Link": apitest.LinkHeader(ex.link)}
}

func postLD(s *apitest.Server, raw []byte, hdr map[string]string) *apitest.Response {
	return s.Do(apitest.Req{Method: "POST", Path: entitiesPath, Body: raw, ContentType: "application/ld+json", Header: hdr})
}

// jsonEqual compares two decoded JSON values semantically (numbers as float64).
func jsonEqual(a, b any) bool {
	na, nb := renormalize(a), renormalize(b)
	return reflect.DeepEqual(na, nb)
}

func renormalize(v any) any {
	data, _ := json.Marshal(v)
	var out any
	json.Unmarshal(data, &out)
	return out
}

func attrNames(m map[string]any, model string) []string {
	var names []string
	for k := range m {
		switch k {
		case "id", "type", "@context", "scope":
			continue
		}
		if _, skip := sdmIgnored[model+":"+k]; skip {
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// sameTime compares two NGSI-LD DateTime strings as instants.
func sameTime(a, b any) bool {
	sa, _ := a.(string)
	sb, _ := b.(string)
	ta, err1 := time.Parse(time.RFC3339Nano, sa)
	tb, err2 := time.Parse(time.RFC3339Nano, sb)
	if err1 != nil || err2 != nil {
		return sa == sb
	}
	return ta.Equal(tb)
}

// compareAttr checks a normalized attribute read back against the example's.
func compareAttr(t *testing.T, where string, want, got any) {
	t.Helper()
	wm, ok1 := want.(map[string]any)
	gm, ok2 := got.(map[string]any)
	if !ok1 || !ok2 {
		if !jsonEqual(want, got) {
			t.Errorf("%s: got %s, want %s", where, js(got), js(want))
		}
		return
	}
	for k, wv := range wm {
		gv, ok := gm[k]
		if !ok {
			t.Errorf("%s: member %s missing; got %s", where, k, js(got))
			continue
		}
		switch k {
		case "observedAt":
			if !sameTime(wv, gv) {
				t.Errorf("%s.observedAt: got %v, want %v", where, gv, wv)
			}
		case "type", "value", "object", "unitCode", "datasetId":
			if !jsonEqual(wv, gv) {
				t.Errorf("%s.%s: got %s, want %s", where, k, js(gv), js(wv))
			}
		default: // a sub-attribute
			compareAttr(t, where+"."+k, wv, gv)
		}
	}
	for k := range gm {
		if _, ok := wm[k]; !ok {
			t.Errorf("%s: unexpected member %s: %s", where, k, js(gm[k]))
		}
	}
}

func js(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
	return strings.TrimSpace(b.String())
}

// keyValue is what keyValues shows for a normalized attribute.
func keyValue(attr any) any {
	m, ok := attr.(map[string]any)
	if !ok {
		return attr
	}
	if m["type"] == "Relationship" {
		return m["object"]
	}
	return m["value"]
}

// qLiteral writes a scalar JSON value as a q literal; ok is false for values
// q cannot name (null, objects, arrays).
func qLiteral(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return js(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// checkFound runs the queries that must find ex: by type, and by q on every
// scalar Property (value) of the example, with the model's context.
func checkFound(t *testing.T, s *apitest.Server, ex sdmExample, props map[string]any, hdr map[string]string) {
	t.Helper()
	link := sdmLink(ex)
	h := map[string]string{}
	for k, v := range hdr {
		h[k] = v
	}
	for k, v := range link {
		h[k] = v
	}
	if ids := queryIDs(t, s, "type="+url.QueryEscape(ex.typ)+"&limit=1000", h); !slices.Contains(ids, ex.id) {
		t.Errorf("type=%s does not find %s: %v", ex.typ, ex.id, ids)
	}
	if ids := queryIDs(t, s, "id="+url.QueryEscape(ex.id)+"&type="+url.QueryEscape(ex.typ), h); !slices.Equal(ids, []string{ex.id}) {
		t.Errorf("id=%s&type=%s: %v", ex.id, ex.typ, ids)
	}
	n := 0
	for _, name := range attrNames(props, ex.model) {
		lit, ok := qLiteral(props[name])
		if !ok {
			continue
		}
		q := name + "==" + lit
		ids := queryIDs(t, s, "q="+url.QueryEscape(q)+"&limit=1000", h)
		if !slices.Contains(ids, ex.id) {
			t.Errorf("q=%s does not find %s: %v", q, ex.id, ids)
		}
		// And with the type, through POST /entityOperations/query.
		ids = postQueryIDs(t, s, "limit=1000", map[string]any{"type": "Query", "entities": []any{map[string]any{"type": ex.typ}}, "q": q}, h)
		if !slices.Equal(ids, []string{ex.id}) {
			t.Errorf("POST query type=%s q=%s: %v, want [%s]", ex.typ, q, ids, ex.id)
		}
		n++
	}
	if n == 0 {
		t.Logf("%s: no scalar Property to query", ex.path)
	}
	// DateTime values written as JSON-LD value objects
	// {"@type": "DateTime", "@value": "..."} compare as times (4.9).
	for _, name := range attrNames(props, ex.model) {
		m, ok := props[name].(map[string]any)
		if !ok || m["@type"] != "DateTime" {
			continue
		}
		v, _ := m["@value"].(string)
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
			// Not a DateTime (ACMeasurement has "2020-03-17TT08:45:00Z",
			// service_requests "2010-04-15T06:37:38-08:00Z"): stored as
			// given, but q cannot name it.
			t.Logf("%s: %s is not a valid DateTime: %q", ex.path, name, v)
			continue
		}
		for _, q := range []string{name + "==" + v, name + ">=" + v, name + "<=" + v, name + "==" + v + ".." + v} {
			if ids := queryIDs(t, s, "q="+url.QueryEscape(q)+"&limit=1000", h); !slices.Contains(ids, ex.id) {
				t.Errorf("q=%s does not find %s: %v", q, ex.id, ids)
			}
		}
		if ids := queryIDs(t, s, "q="+url.QueryEscape(name+">"+v)+"&limit=1000", h); slices.Contains(ids, ex.id) {
			t.Errorf("q=%s>%s finds %s", name, v, ex.id)
		}
	}
}

// scalarProps returns the example's Property values by attribute name
// (normalized examples: the value of type Property; keyValues: the value).
func normalizedProps(body map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range body {
		if m, ok := v.(map[string]any); ok && m["type"] == "Property" {
			out[k] = m["value"]
		}
	}
	return out
}

// loadExamples creates every example (with header hdr): the valid ones must
// be created where their Location says, the known invalid ones refused with
// their error. It returns those created.
func loadExamples(t *testing.T, s *apitest.Server, exs []sdmExample, hdr map[string]string) []sdmExample {
	var loaded []sdmExample
	for _, ex := range exs {
		t.Run("load/"+ex.model, func(t *testing.T) {
			r := postLD(s, ex.raw, hdr)
			if inv, ok := sdmInvalid[ex.path]; ok {
				t.Logf("%s is not valid NGSI-LD (%s): %s", ex.path, inv.why, r.Body)
				r.ExpectProblem(t, 400, inv.errType)
				return
			}
			r.Expect(t, 201)
			if loc := r.Header.Get("Location"); loc != entitiesPath+"/"+url.PathEscape(ex.id) {
				t.Errorf("Location %q", loc)
			}
			loaded = append(loaded, ex)
		})
	}
	return loaded
}

func TestSDMNormalizedExamples(t *testing.T) {
	s := apitest.Start(t)
	exs := loadSDM(t, "example-normalized.jsonld")
	if len(exs) < 25 {
		t.Fatalf("only %d normalized examples", len(exs))
	}
	loaded := loadExamples(t, s, exs, tenant("sdm"))
	for _, ex := range loaded {
		t.Run("read/"+ex.model, func(t *testing.T) {
			hdr := tenant("sdm")
			for k, v := range sdmLink(ex) {
				hdr[k] = v
			}
			path := entitiesPath + "/" + url.PathEscape(ex.id)
			// normalized
			var got map[string]any
			json.Unmarshal(s.Get(path, hdr).Expect(t, 200).Body, &got)
			if got["id"] != ex.id || !jsonEqual(got["type"], ex.body["type"]) {
				t.Errorf("id/type: got %v %v", got["id"], got["type"])
			}
			if w, g := attrNames(ex.body, ex.model), attrNames(got, ex.model); !slices.Equal(w, g) {
				t.Errorf("attributes differ:\n got %v\nwant %v", g, w)
			}
			for _, name := range attrNames(ex.body, ex.model) {
				if g, ok := got[name]; ok {
					compareAttr(t, name, ex.body[name], g)
				}
			}
			// keyValues
			var kv map[string]any
			json.Unmarshal(s.Get(path+"?options=keyValues", hdr).Expect(t, 200).Body, &kv)
			if w, g := attrNames(ex.body, ex.model), attrNames(kv, ex.model); !slices.Equal(w, g) {
				t.Errorf("keyValues attributes differ:\n got %v\nwant %v", g, w)
			}
			for _, name := range attrNames(ex.body, ex.model) {
				if want := keyValue(ex.body[name]); !jsonEqual(want, kv[name]) {
					t.Errorf("keyValues %s: got %s, want %s", name, js(kv[name]), js(want))
				}
			}
			checkFound(t, s, ex, normalizedProps(ex.body), tenant("sdm"))
		})
	}
	t.Run("count by tenant", func(t *testing.T) {
		r := s.Get(entitiesPath+"?local=true&count=true&limit=0", tenant("sdm")).Expect(t, 200)
		if c := r.Header.Get("NGSILD-Results-Count"); c != strconv.Itoa(len(loaded)) {
			t.Errorf("count %s, want %d", c, len(loaded))
		}
	})
}

// The keyValues examples (example.jsonld) are bodies in the concise
// representation: plain values and JSON objects whose "type" is not an
// NGSI-LD attribute type (a PostalAddress, an array of geometries) become
// Properties, GeoJSON geometries GeoProperties, URIs string Properties
// (keyValues loses the Relationship type).
func TestSDMKeyValuesExamples(t *testing.T) {
	s := apitest.Start(t)
	exs := loadSDM(t, "example.jsonld")
	if len(exs) < 24 {
		t.Fatalf("only %d keyValues examples", len(exs))
	}
	loaded := loadExamples(t, s, exs, nil)
	for _, ex := range loaded {
		t.Run("read/"+ex.model, func(t *testing.T) {
			path := entitiesPath + "/" + url.PathEscape(ex.id)
			var kv map[string]any
			json.Unmarshal(s.Get(path+"?options=keyValues", sdmLink(ex)).Expect(t, 200).Body, &kv)
			if kv["id"] != ex.id || !jsonEqual(kv["type"], ex.body["type"]) {
				t.Errorf("id/type: got %v %v", kv["id"], kv["type"])
			}
			if w, g := attrNames(ex.body, ex.model), attrNames(kv, ex.model); !slices.Equal(w, g) {
				t.Errorf("attributes differ:\n got %v\nwant %v", g, w)
			}
			for _, name := range attrNames(ex.body, ex.model) {
				if !jsonEqual(ex.body[name], kv[name]) {
					t.Errorf("%s: got %s, want %s", name, js(kv[name]), js(ex.body[name]))
				}
			}
			var norm map[string]any
			json.Unmarshal(s.Get(path, sdmLink(ex)).Expect(t, 200).Body, &norm)
			props := map[string]any{}
			for _, name := range attrNames(ex.body, ex.model) {
				a, _ := norm[name].(map[string]any)
				if a == nil {
					continue
				}
				wantType := "Property"
				if m, ok := ex.body[name].(map[string]any); ok && m["coordinates"] != nil || name == "location" {
					wantType = "GeoProperty"
				}
				if a["type"] != wantType || !jsonEqual(a["value"], ex.body[name]) {
					t.Errorf("normalized %s: got %s, want a %s of %s", name, js(a), wantType, js(ex.body[name]))
				}
				props[name] = ex.body[name]
			}
			checkFound(t, s, ex, props, nil)
		})
	}
}
