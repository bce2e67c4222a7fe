package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

func sampleChange() store.Change {
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("", 3600))
	before := &ngsild.Entity{ID: "urn:a", Types: []string{"https://x/T"}, Scopes: []string{"/a"}, CreatedAt: at.UTC(),
		Attrs: map[string][]*ngsild.Attribute{
			"https://x/p": {{Kind: ngsild.Property, Value: 1.0, ObservedAt: at.UTC()}},
			"https://x/q": {{Kind: ngsild.Relationship, Value: "urn:b"}},
			"https://x/r": {{Kind: ngsild.Property, Value: "gone"}},
		}}
	after := &ngsild.Entity{ID: "urn:a", Types: []string{"https://x/T"}, Scopes: []string{"/a"}, CreatedAt: at.UTC(), ModifiedAt: at.UTC(),
		Attrs: map[string][]*ngsild.Attribute{
			"https://x/p": {{Kind: ngsild.Property, Value: 2.0, ObservedAt: at.UTC(), DatasetID: "urn:d"}},
			"https://x/q": {{Kind: ngsild.Relationship, Value: "urn:b"}},
			"https://x/s": {{Kind: ngsild.JsonProperty, Value: map[string]any{"k": []any{1.0, nil, true}}}},
		}}
	return store.Change{Seq: 1 << 40, Tenant: "t1", At: at, Kind: store.EntityUpdated, ID: "urn:a",
		Before: before, After: after,
		Attrs: []store.AttrChange{{Name: "https://x/p", Kind: store.AttrUpdated},
			{Name: "https://x/r", Kind: store.AttrDeleted}, {Name: "https://x/s", Kind: store.AttrCreated}}}
}

func TestChangeRoundTrip(t *testing.T) {
	c := sampleChange()
	created := store.Change{Seq: 1, At: time.Unix(1700000000, 5).UTC(), Kind: store.EntityCreated, ID: "urn:c",
		After: &ngsild.Entity{ID: "urn:c", Types: []string{"T"}}}
	deleted := store.Change{Seq: 2, Kind: store.EntityDeleted, ID: "urn:c", Before: created.After,
		Attrs: []store.AttrChange{}}
	for _, want := range []store.Change{c, created, deleted} {
		b, err := AppendChange([]byte("prefix"), &want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatal("AppendChange did not append")
		}
		got, err := DecodeChange(b[len("prefix"):])
		if err != nil {
			t.Fatalf("change %d: %v", want.Seq, err)
		}
		if !got.At.Equal(want.At) {
			t.Errorf("change %d: At %v, want %v", want.Seq, got.At, want.At)
		}
		_, wantOff := want.At.Zone()
		if _, off := got.At.Zone(); off != wantOff {
			t.Errorf("change %d: At's offset %d, want %d", want.Seq, off, wantOff)
		}
		got.At, want.At = time.Time{}, time.Time{}
		if len(want.Attrs) == 0 {
			want.Attrs = nil // an empty list reads back as none
		}
		if !reflect.DeepEqual(got, want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			t.Errorf("round trip:\n got  %s\n want %s", gj, wj)
		}
	}
}

// Every truncation and every flipped byte fails cleanly or decodes to a
// change that encodes again.
func TestChangeCorrupt(t *testing.T) {
	c := sampleChange()
	b, err := AppendChange(nil, &c)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(b) {
		if _, err := DecodeChange(b[:i]); err == nil {
			t.Errorf("truncated to %d bytes: decoded", i)
		} else if !errors.Is(err, ErrCorruptChange) {
			t.Errorf("truncated to %d bytes: %v, want ErrCorruptChange", i, err)
		}
		bad := bytes.Clone(b)
		bad[i] ^= 0xff
		if got, err := DecodeChange(bad); err == nil {
			if _, err := AppendChange(nil, &got); err != nil {
				t.Errorf("flipped byte %d: decoded a change that does not encode: %v", i, err)
			}
		}
	}
	if _, err := DecodeChange(append(b, 0)); !errors.Is(err, ErrCorruptChange) {
		t.Errorf("trailing byte: %v, want ErrCorruptChange", err)
	}
}

func TestPriorPart(t *testing.T) {
	c := sampleChange()
	p := PriorPart(&c)
	if p.ID != "urn:a" || len(p.Types) != 1 || len(p.Scopes) != 1 {
		t.Fatalf("prior part lost the identity: %+v", p)
	}
	if len(p.Attrs) != 2 || p.Attrs["https://x/p"] == nil || p.Attrs["https://x/r"] == nil {
		t.Fatalf("prior part holds %v, want the updated and the deleted attribute", p.Attrs)
	}
	d := store.Change{Kind: store.EntityDeleted, Before: c.Before}
	if PriorPart(&d) != c.Before {
		t.Fatal("a deleted entity's prior part is not all of it")
	}
	if PriorPart(&store.Change{Kind: store.EntityCreated}) != nil {
		t.Fatal("a created entity has a prior part")
	}
}

func FuzzDecodeChange(f *testing.F) {
	c := sampleChange()
	b, _ := AppendChange(nil, &c)
	f.Add(b)
	small := store.Change{Seq: 3, Kind: store.EntityCreated, ID: "urn:x", After: &ngsild.Entity{ID: "urn:x"}}
	b, _ = AppendChange(nil, &small)
	f.Add(b)
	f.Add([]byte{ChangeV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeChange(b)
		if err != nil {
			return
		}
		b2, err := AppendChange(nil, &c)
		if err != nil {
			return // e.g. NaN from fuzzed bytes is fine in binary only
		}
		c2, err := DecodeChange(b2)
		if err != nil {
			t.Fatalf("a re-encoded change does not decode: %v", err)
		}
		if c2.Seq != c.Seq || c2.ID != c.ID || c2.Tenant != c.Tenant || c2.Kind != c.Kind || !c2.At.Equal(c.At) ||
			len(c2.Attrs) != len(c.Attrs) || (c2.Before == nil) != (c.Before == nil) || (c2.After == nil) != (c.After == nil) {
			t.Fatalf("re-encoding changed the change: %+v, then %+v", c, c2)
		}
	})
}
