package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations is the versioned schema: migrations[i] brings a database from
// version i to version i+1. Append only; never edit a released entry.
//
// Layout (tid = tenant id, eid = entity rowid, names are interned in names):
//
//	tenants(tid, name, n)                    n = number of entities
//	entities(eid, tid, id, ver, created, modified, doc)   unique (tid,id), index (tid) for scans in creation order
//	entity_types(tid, type, eid)             candidates by type
//	attr_has(tid, name, eid)                 candidates by attribute presence (attrs=, q exists)
//	attr_num(tid, name, num, eid)            numeric and boolean attribute values (q pushdown)
//	attr_txt(tid, name, txt, eid)            string values and relationship objects (q pushdown)
//	geo_keys(z, tid, type, attr)             one 2-D R*Tree geo_<z> per (tenant, entity type, GeoProperty)
//	geo_<z> (rtree: id = eid, x, y)          bounding box of the entity's instances of the GeoProperty
//	type_counts, attr_counts, type_attrs     counters kept in the write transaction (count, Types, Attributes)
//	contexts(id, kind, body, created)        @contexts, global
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (k, v) VALUES ('ver', 0);

CREATE TABLE tenants (
	tid  INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	n    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO tenants (tid, name) VALUES (1, '');

CREATE TABLE names (
	nid  INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);

CREATE TABLE entities (
	eid      INTEGER PRIMARY KEY,
	tid      INTEGER NOT NULL,
	id       TEXT NOT NULL,
	ver      INTEGER NOT NULL,
	created  INTEGER NOT NULL,
	modified INTEGER NOT NULL,
	doc      BLOB NOT NULL,
	UNIQUE (tid, id)
);
CREATE INDEX entities_tid ON entities (tid);

CREATE TABLE entity_types (
	tid  INTEGER NOT NULL,
	type INTEGER NOT NULL,
	eid  INTEGER NOT NULL,
	PRIMARY KEY (tid, type, eid)
) WITHOUT ROWID;

CREATE TABLE attr_has (
	tid  INTEGER NOT NULL,
	name INTEGER NOT NULL,
	eid  INTEGER NOT NULL,
	PRIMARY KEY (tid, name, eid)
) WITHOUT ROWID;

CREATE TABLE attr_num (
	tid  INTEGER NOT NULL,
	name INTEGER NOT NULL,
	num  REAL NOT NULL,
	eid  INTEGER NOT NULL,
	PRIMARY KEY (tid, name, num, eid)
) WITHOUT ROWID;

CREATE TABLE attr_txt (
	tid  INTEGER NOT NULL,
	name INTEGER NOT NULL,
	txt  TEXT NOT NULL,
	eid  INTEGER NOT NULL,
	PRIMARY KEY (tid, name, txt, eid)
) WITHOUT ROWID;

CREATE TABLE geo_keys (
	z    INTEGER PRIMARY KEY,
	tid  INTEGER NOT NULL,
	type INTEGER NOT NULL,
	attr INTEGER NOT NULL,
	UNIQUE (tid, type, attr)
);
-- one 2-D R*Tree per geo key: geo_<z>(id = eid, minx, maxx, miny, maxy), created on first use

CREATE TABLE type_counts (
	tid  INTEGER NOT NULL,
	type INTEGER NOT NULL,
	n    INTEGER NOT NULL,
	PRIMARY KEY (tid, type)
) WITHOUT ROWID;

CREATE TABLE attr_counts (
	tid  INTEGER NOT NULL,
	name INTEGER NOT NULL,
	n    INTEGER NOT NULL, -- entities having the attribute
	nx   INTEGER NOT NULL, -- of which have a value attr_num/attr_txt cannot hold
	PRIMARY KEY (tid, name)
) WITHOUT ROWID;

CREATE TABLE type_attrs (
	tid  INTEGER NOT NULL,
	type INTEGER NOT NULL,
	name INTEGER NOT NULL,
	kind TEXT NOT NULL,
	n    INTEGER NOT NULL,
	PRIMARY KEY (tid, type, name, kind)
) WITHOUT ROWID;

CREATE TABLE contexts (
	id      TEXT PRIMARY KEY,
	kind    TEXT NOT NULL,
	body    BLOB NOT NULL,
	created INTEGER NOT NULL
);
`,
}

// migrate brings the database to the latest schema version, each step in its
// own transaction.
func migrate(ctx context.Context, db *sql.Conn) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var v int
	err := db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	if err == sql.ErrNoRows {
		if _, err := db.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("init schema_version: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("read schema_version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this program (%d)", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		if err := func() error {
			if _, err := db.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
				return err
			}
			if _, err := db.ExecContext(ctx, migrations[v]); err != nil {
				db.ExecContext(context.Background(), `ROLLBACK`)
				return err
			}
			if _, err := db.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v+1); err != nil {
				db.ExecContext(context.Background(), `ROLLBACK`)
				return err
			}
			_, err := db.ExecContext(ctx, `COMMIT`)
			return err
		}(); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
	}
	return nil
}
