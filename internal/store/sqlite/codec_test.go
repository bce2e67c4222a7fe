package sqlite

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

func TestCodecRoundTrip(t *testing.T) {
	obs := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	e := &ngsild.Entity{
		ID: "urn:a", Types: []string{"https://x/T", "https://x/U"}, Scopes: []string{"/a/b"},
		CreatedAt: obs, ModifiedAt: obs.In(time.FixedZone("", 3600)),
		Attrs: map[string][]*ngsild.Attribute{
			"p": {{Kind: ngsild.Property, Value: 1.5, ObservedAt: obs, UnitCode: "CEL", DatasetID: "urn:d",
				Sub: map[string]*ngsild.Attribute{"s": {Kind: ngsild.Property, Value: "x"}}}},
			"r": {{Kind: ngsild.Relationship, Value: "urn:b", ObjectType: []string{"https://x/B"}}},
			"j": {{Kind: ngsild.JsonProperty, Value: map[string]any{"a": []any{1.0, "b", true, false, nil, map[string]any{}}, "n": nil}}},
			"i": {{Kind: ngsild.Property, Value: 7}},                     // int: stored as a JSON number
			"g": {{Kind: ngsild.Property, Value: []string{"x", "y"}}},    // other Go types: as JSON
			"k": {{Kind: "Custom", Value: map[string]string{"nl": "a"}}}, // unknown kind
			"e": {},
		},
	}
	doc, err := encodeEntity(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEntity(doc)
	if err != nil {
		t.Fatal(err)
	}
	// The reference is what a JSON round trip makes of e.
	j, _ := json.Marshal(e)
	want, err := decodeEntity(j)
	if err != nil {
		t.Fatal(err)
	}
	want.Attrs["e"] = []*ngsild.Attribute{} // JSON keeps an empty list too
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		t.Errorf("round trip:\n got  %s\n want %s", gj, j)
	}
	if !got.ModifiedAt.Equal(e.ModifiedAt) {
		t.Errorf("time zone lost")
	}
	// Truncated or corrupt documents fail cleanly.
	for i := range len(doc) {
		decodeEntity(doc[:i])
		bad := append([]byte(nil), doc...)
		bad[i] ^= 0xff
		decodeEntity(bad)
	}
}

func FuzzDecodeEntity(f *testing.F) {
	doc, _ := encodeEntity(&ngsild.Entity{ID: "urn:a", Types: []string{"T"},
		Attrs: map[string][]*ngsild.Attribute{"p": {{Kind: ngsild.Property, Value: []any{1.0, "x"}}}}})
	f.Add(doc)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntity(b)
		// The query index build reads the same documents its own way: it
		// must not panic either, and accept what decodeEntity accepts.
		_, perr := projectDoc(b, 1, 1, &nameCache{ix: newMemIndex(), m: map[string]uint32{}})
		if err == nil && perr != nil {
			t.Fatalf("decodeEntity accepts the document, projectDoc says %v", perr)
		}
		if err != nil || b[0] != docV1 {
			return
		}
		b2, err := encodeEntity(e)
		if err != nil {
			return // e.g. NaN from fuzzed bytes is fine in binary only
		}
		if _, err := decodeEntity(b2); err != nil {
			t.Fatalf("re-encoded document does not decode: %v", err)
		}
	})
}
