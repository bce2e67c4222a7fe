package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

func testEntity(id, typ string, v float64, lon float64) *ngsild.Entity {
	return &ngsild.Entity{ID: id, Types: []string{storetest.Expand(typ)}, Attrs: map[string][]*ngsild.Attribute{
		storetest.Expand("temperature"): {{Kind: ngsild.Property, Value: v}},
		storetest.Expand("name"):        {{Kind: ngsild.Property, Value: fmt.Sprintf("n%v", v)}},
		ngsild.IRILocation:              {storetest.Point(lon, 50.85)},
	}}
}

// One Write (one group transaction) that creates, changes, deletes and
// recreates entities must leave exactly the state of applying the ops one by
// one: rows, indexes, R*Trees and counters, also after reopening.
func TestWriteGroupNetEffect(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	bad := "urn:ngsi-ld:T:\xff\x00bad" // not valid UTF-8: read alone, not through JSON
	ops := []store.Op{
		storetest.Upsert(testEntity("urn:ngsi-ld:T:a", "T", 1, 4.30)),
		storetest.Upsert(testEntity("urn:ngsi-ld:T:a", "T", 2, 4.31)), // changed twice
		storetest.Upsert(testEntity("urn:ngsi-ld:T:b", "T", 3, 4.32)),
		storetest.Delete("urn:ngsi-ld:T:b"), // created and deleted
		storetest.Upsert(testEntity("urn:ngsi-ld:T:c", "T", 4, 4.33)),
		storetest.Delete("urn:ngsi-ld:T:c"),
		storetest.Upsert(testEntity("urn:ngsi-ld:T:c", "U", 5, 4.34)), // recreated with another type
		storetest.Upsert(testEntity(bad, "T", 6, 4.35)),
		storetest.Delete("urn:ngsi-ld:T:missing"), // Apply error: only this op fails
	}
	res, err := s.Write(ctx, "", ops)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if (r.Err != nil) != (i == len(ops)-1) {
			t.Fatalf("op %d: %v", i, r.Err)
		}
	}
	check := func(s *Store) {
		t.Helper()
		n := 0
		for _, tc := range []struct {
			typ, q string
			want   []string
		}{
			{"T", "", []string{"urn:ngsi-ld:T:a", bad}},
			{"U", "", []string{"urn:ngsi-ld:T:c"}},
			{"T", "temperature==2", []string{"urn:ngsi-ld:T:a"}},
			{"T", "temperature==1", nil},
			{"T", "temperature==3", nil},
			{"U", "name==\"n5\"", []string{"urn:ngsi-ld:T:c"}},
		} {
			q := &store.Query{Limit: 100, Count: true}
			q.Type, _ = qlang.ParseTypeQuery(tc.typ, storetest.Expand)
			if tc.q != "" {
				if q.Q, err = qlang.ParseQ(tc.q, storetest.Expand); err != nil {
					t.Fatal(err)
				}
			}
			q.Geo, err = geo.ParseQuery("near;maxDistance==50000", "Point", "[4.3,50.85]", "", storetest.Expand)
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.Query(ctx, "", q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range r.Entities {
				got = append(got, e.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || r.Count != len(tc.want) {
				t.Errorf("type %s q %q: got %q (count %d), want %q", tc.typ, tc.q, got, r.Count, tc.want)
			}
			n++
		}
		types, err := s.Types(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, ti := range types {
			counts[ti.Type] = ti.Count
		}
		if counts[storetest.Expand("T")] != 2 || counts[storetest.Expand("U")] != 1 || len(counts) != 2 {
			t.Errorf("type counts %v", counts)
		}
		attrs, err := s.Attributes(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range attrs {
			if a.Count != 3 {
				t.Errorf("attribute %s: count %d, want 3", a.Name, a.Count)
			}
		}
		if e, err := s.Get(ctx, "", bad); err != nil || e.ID != bad {
			t.Errorf("get %q: %v", bad, err)
		}
	}
	check(s)
	// The next group sees the committed state, new eids follow the old ones.
	if _, err := s.Write(ctx, "", []store.Op{storetest.Upsert(testEntity("urn:ngsi-ld:T:d", "V", 7, 4.36))}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(ctx, "", []store.Op{storetest.Delete("urn:ngsi-ld:T:d")}); err != nil {
		t.Fatal(err)
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path, Options{CacheEntities: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
	if _, err := s.Write(ctx, "", []store.Op{storetest.Upsert(testEntity("urn:ngsi-ld:T:e", "T", 8, 4.37))}); err != nil {
		t.Fatal(err)
	}
	var eids []int64
	rows, err := s.rdb.Query(`SELECT eid FROM entities ORDER BY eid`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var eid int64
		rows.Scan(&eid)
		eids = append(eids, eid)
	}
	rows.Close()
	if len(eids) != 4 {
		t.Errorf("eids %v, want 4 entities", eids)
	}
}
