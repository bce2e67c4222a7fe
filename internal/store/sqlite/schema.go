package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations is the versioned schema: migrations[i] brings a database from
// version i to version i+1. Append only; never edit a released entry.
// Version 2 is the layout below; version 1 also had SQL indexes for queries
// (entity_types, attr_has, attr_num, attr_txt, geo_keys and the R*Trees
// geo_<z>), replaced by the in-memory index (memindex.go).
//
// Layout (tid = tenant id, eid = entity rowid, names are interned in names):
//
//	tenants(tid, name, n)                    n = number of entities
//	entities(eid, tid, id, ver, created, modified, doc)   unique (tid,id), index (tid) for scans in creation order
//	type_counts, attr_counts, type_attrs     counters kept in the write transaction (count, Types, Attributes)
//	contexts(id, kind, body, created)        @contexts, global
//	h_head(seq, tid, id, doc)                history records not yet sealed, one per entity write (history.go);
//	                                         seq is the commit time in ns, made strictly increasing; found by entity
//	                                         through the in-memory headIndex
//	h_entities(hid, tid, id, types)          entities with sealed history
//	h_series(sid, hid, name, dataset)        one per attribute instance with sealed history
//	h_chunks(sid, day, part, level, n, data) a series' samples of one UTC day, compressed (internal/tsz), in parts
//	                                         of at most partMax samples; level 1 and 2: rollups instead (histretain.go)
//	changes(seq, n, data)                    the change log (changes.go): one row per write group, holding its n
//	                                         changes numbered seq, seq+1, ...
//	subscriptions(tenant, id, doc, status)   NGSI-LD subscriptions (subscriptions.go), opaque documents
//	n_queue(nid, tenant, sub, created, body) notifications waiting for delivery
//	n_cursor(k, seq)                         how far the notifier has read the change log
//	records(kind, tenant, id, doc)           small opaque documents that are not entities (records.go)
var migrations = []migration{
	// 1: initial schema.
	{sql: `
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
`},
	// 2: queries read the in-memory index; drop the SQL ones.
	{sql: `
DROP TABLE entity_types;
DROP TABLE attr_has;
DROP TABLE attr_num;
DROP TABLE attr_txt;
ALTER TABLE attr_counts DROP COLUMN nx;
`, fn: dropGeoTables},
	// 3: history (history.go).
	{sql: `
CREATE TABLE h_head (
	seq  INTEGER PRIMARY KEY,
	tid  INTEGER NOT NULL,
	id   TEXT NOT NULL,
	doc  BLOB NOT NULL
);

CREATE TABLE h_entities (
	hid   INTEGER PRIMARY KEY,
	tid   INTEGER NOT NULL,
	id    TEXT NOT NULL,
	types BLOB NOT NULL,
	UNIQUE (tid, id)
);

CREATE TABLE h_series (
	sid     INTEGER PRIMARY KEY,
	hid     INTEGER NOT NULL,
	name    INTEGER NOT NULL,
	dataset TEXT NOT NULL,
	UNIQUE (hid, name, dataset)
);

CREATE TABLE h_chunks (
	sid   INTEGER NOT NULL,
	day   INTEGER NOT NULL,
	part  INTEGER NOT NULL,
	level INTEGER NOT NULL,
	n     INTEGER NOT NULL,
	data  BLOB NOT NULL,
	PRIMARY KEY (sid, day, part)
) WITHOUT ROWID;
`},
	// 4: the change log, subscriptions and their notification queue.
	{sql: `
CREATE TABLE changes (
	seq  INTEGER PRIMARY KEY,
	n    INTEGER NOT NULL,
	data BLOB NOT NULL
);

CREATE TABLE subscriptions (
	tenant TEXT NOT NULL,
	id     TEXT NOT NULL,
	doc    BLOB NOT NULL,
	status BLOB NOT NULL,
	PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE n_queue (
	nid     INTEGER PRIMARY KEY AUTOINCREMENT,
	tenant  TEXT NOT NULL,
	sub     TEXT NOT NULL,
	created INTEGER NOT NULL,
	body    BLOB NOT NULL
);
CREATE INDEX n_queue_sub ON n_queue (tenant, sub, nid);

CREATE TABLE n_cursor (k TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
`},
	// 5: records (store.Records).
	{sql: `
CREATE TABLE records (
	kind   TEXT NOT NULL,
	tenant TEXT NOT NULL,
	id     TEXT NOT NULL,
	doc    BLOB NOT NULL,
	PRIMARY KEY (kind, tenant, id)
) WITHOUT ROWID;
`},
}

// migration is one schema step: SQL, then fn if set.
type migration struct {
	sql string
	fn  func(ctx context.Context, db *sql.Conn) error
}

// dropGeoTables drops the R*Trees of schema version 1 and their registry.
func dropGeoTables(ctx context.Context, db *sql.Conn) error {
	rows, err := db.QueryContext(ctx, `SELECT z FROM geo_keys`)
	if err != nil {
		return err
	}
	var zs []int64
	for rows.Next() {
		var z int64
		if err := rows.Scan(&z); err != nil {
			rows.Close()
			return err
		}
		zs = append(zs, z)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for _, z := range zs {
		if _, err := db.ExecContext(ctx, fmt.Sprintf(`DROP TABLE geo_%d`, z)); err != nil {
			return err
		}
	}
	_, err = db.ExecContext(ctx, `DROP TABLE geo_keys`)
	return err
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
			m := migrations[v]
			_, err := db.ExecContext(ctx, m.sql)
			if err == nil && m.fn != nil {
				err = m.fn(ctx, db)
			}
			if err != nil {
				db.ExecContext(context.Background(), `ROLLBACK`)
				return err
			}
			if _, err := db.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v+1); err != nil {
				db.ExecContext(context.Background(), `ROLLBACK`)
				return err
			}
			_, err = db.ExecContext(ctx, `COMMIT`)
			return err
		}(); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
	}
	return nil
}
