package codec

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
	doc, err := EncodeEntity(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEntity(doc)
	if err != nil {
		t.Fatal(err)
	}
	// The reference is what a JSON round trip makes of e.
	j, _ := json.Marshal(e)
	want, err := DecodeEntity(j)
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
		DecodeEntity(doc[:i])
		bad := append([]byte(nil), doc...)
		bad[i] ^= 0xff
		DecodeEntity(bad)
	}
}

func FuzzDecodeEntity(f *testing.F) {
	doc, _ := EncodeEntity(&ngsild.Entity{ID: "urn:a", Types: []string{"T"},
		Attrs: map[string][]*ngsild.Attribute{"p": {{Kind: ngsild.Property, Value: []any{1.0, "x"}}}}})
	f.Add(doc)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntity(b)
		if err != nil || b[0] != DocV1 {
			return
		}
		b2, err := EncodeEntity(e)
		if err != nil {
			return // e.g. NaN from fuzzed bytes is fine in binary only
		}
		if _, err := DecodeEntity(b2); err != nil {
			t.Fatalf("re-encoded document does not decode: %v", err)
		}
	})
}
