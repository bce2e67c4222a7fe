package sqlite

import (
	"context"
	"database/sql"
	"github.com/zenne-city/zenne/internal/store/codec"
	"path/filepath"
	"testing"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

// A database of schema version 1 (with SQL query indexes and R*Trees) opens
// at the current version, its entities intact and found by queries.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "zenne.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	e := storetest.Ent("urn:ngsi-ld:Bin:1", []string{"https://example.org/Bin"})
	e.Attrs[ngsild.IRILocation] = []*ngsild.Attribute{storetest.Point(4.35, 50.85)}
	doc, err := codec.EncodeEntity(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_version (version INTEGER NOT NULL)`,
		`INSERT INTO schema_version (version) VALUES (1)`,
		migrations[0].sql,
		`INSERT INTO names (nid, name) VALUES (1, 'https://example.org/Bin'), (2, '` + ngsild.IRILocation + `')`,
		`INSERT INTO geo_keys (z, tid, type, attr) VALUES (1, 1, 1, 2)`,
		`CREATE VIRTUAL TABLE geo_1 USING rtree (id, minx, maxx, miny, maxy)`,
		`INSERT INTO geo_1 VALUES (1, 4.35, 4.35, 50.85, 50.85)`,
		`INSERT INTO attr_counts (tid, name, n, nx) VALUES (1, 2, 1, 0)`,
		`INSERT INTO type_counts (tid, type, n) VALUES (1, 1, 1)`,
		`UPDATE tenants SET n = 1 WHERE tid = 1`,
		`UPDATE meta SET v = 1 WHERE k = 'ver'`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO entities (eid, tid, id, ver, created, modified, doc) VALUES (1, 1, ?, 1, 0, 0, ?)`, e.ID, doc); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open a version 1 database: %v", err)
	}
	defer s.Close()
	var v, tables int
	if err := s.wconn.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema version %d (%v), want %d", v, err, len(migrations))
	}
	if err := s.wconn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name LIKE 'geo%' OR name LIKE 'attr_has%' OR name = 'entity_types'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("%d version 1 index tables left (%v)", tables, err)
	}
	near, err := geo.ParseQuery("near;maxDistance==100", "Point", "[4.35,50.85]", "", storetest.Expand)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Query(ctx, "", &store.Query{Geo: near, Limit: 10, Count: true})
	if err != nil || res.Count != 1 || len(res.Entities) != 1 || res.Entities[0].ID != e.ID {
		t.Fatalf("query after migration: %+v, %v", res, err)
	}
	// Writes work on the new layout.
	if _, err := s.Write(ctx, "", []store.Op{storetest.Upsert(storetest.Ent("urn:ngsi-ld:Bin:2", []string{"https://example.org/Bin"}))}); err != nil {
		t.Fatal(err)
	}
}
