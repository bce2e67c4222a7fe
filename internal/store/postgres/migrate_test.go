package postgres

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

// Migration 3 turns entity_geo's rows (one per GeoProperty instance, with
// the entity's types) into one row per type with its key: a database
// written before it must answer geo-queries by each of an entity's types,
// and not by others, once opened by this version.
func TestMigrationGeoRowsPerType(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, param string }{{"PostGIS", ""}, {"box", "zenne.postgis=off"}} {
		t.Run(tc.name, func(t *testing.T) {
			url := testDatabase(t)
			if tc.param != "" {
				url = withParam(url, tc.param)
			}
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			before := slices.DeleteFunc(migrations(), func(m migration) bool { return m.version >= 3 })
			if err := (&Store{pool: pool}).migrate(ctx, before); err != nil {
				t.Fatal(err)
			}
			kind, err := readGeoKind(ctx, pool)
			if err != nil {
				t.Fatal(err)
			}
			// What version 2 wrote for an entity of two types at a point.
			types := []string{storetest.Expand("Bin"), storetest.Expand("Asset")}
			e := &ngsild.Entity{ID: "urn:ngsi-ld:Bin:1", Types: types, CreatedAt: time.Unix(1, 0).UTC(), ModifiedAt: time.Unix(1, 0).UTC(),
				Attrs: map[string][]*ngsild.Attribute{ngsild.IRILocation: {storetest.Point(4.35, 50.85)}}}
			doc, err := codec.EncodeEntity(e)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `INSERT INTO entities (tid, id, types, attrs, scopes, doc) VALUES (1, $1, $2, $3, '{}', $4)`,
				e.ID, types, []string{ngsild.IRILocation}, doc); err != nil {
				t.Fatal(err)
			}
			geom := `ST_GeomFromText('POINT(4.35 50.85)', 4326)`
			if kind == geoBox {
				geom = `box(point(4.35, 50.85), point(4.35, 50.85))`
			}
			if _, err := pool.Exec(ctx, `INSERT INTO entity_geo (tid, id, name, types, geom) VALUES (1, $1, $2, $3, `+geom+`)`,
				e.ID, ngsild.IRILocation, types); err != nil {
				t.Fatal(err)
			}

			s, err := Open(ctx, url, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var rows int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM entity_geo WHERE tkey = `+tkeySQL("type", "name")).Scan(&rows); err != nil || rows != 2 {
				t.Fatalf("entity_geo after the migration: %d rows with the right key, want 2 (%v)", rows, err)
			}
			for typ, want := range map[string]int{"Bin": 1, "Asset": 1, "Bin,Asset": 1, "Vehicle": 0} {
				tq, err := qlang.ParseTypeQuery(typ, storetest.Expand)
				if err != nil {
					t.Fatal(err)
				}
				g, err := geo.ParseQuery("near;maxDistance==100", "Point", "[4.3501,50.8501]", "", storetest.Expand)
				if err != nil {
					t.Fatal(err)
				}
				res, err := s.Query(ctx, "", &store.Query{Type: tq, Geo: g, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Entities) != want {
					t.Errorf("type %s near the entity: %d entities, want %d", typ, len(res.Entities), want)
				}
			}
		})
	}
}
