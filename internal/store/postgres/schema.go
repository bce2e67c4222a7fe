package postgres

// coreMigrations create the entity store's tables: tenants, entities, the
// change log, contexts, subscriptions and their queue. Never edit a released
// migration: add one.
//
// Layout (tid = tenant id; text keys are COLLATE "C": byte order, and btree
// comparisons without the locale's strcoll):
//
//	tenants(tid, name)                      '' (the default tenant) is tid 1
//	entities(tid, id, eid, ver, types, attrs, scopes, doc)
//	                                        one row per entity; eid (an identity) is the creation order, a
//	                                        re-created entity gets a new one; attrs lists the names with at
//	                                        least one instance; doc is codec.EncodeEntity's encoding; GIN
//	                                        indexes on types and attrs select candidates
//	entity_geo(tid, id, name, type, tkey, geom)
//	                                        one row per GeoProperty instance with a valid geometry and type of
//	                                        its entity: a PostGIS geometry when the server has PostGIS, else its
//	                                        bounding box (the native box type); tkey hashes type and name
//	                                        (tkeySQL); a GiST index on geometry, tkey and tenant (migration 3)
//	                                        selects candidates, Go decides. A query by type and place reads
//	                                        only the rows of its type
//	type_counts, attr_counts, type_attrs    counters kept in the write transaction (Types, Attributes)
//	change_seq(id = 1, last)                the last change number given; updated last in every write
//	                                        transaction, so its row lock orders numbers by commit
//	changes(seq, n, data)                   the change log: one row per write group, holding its n changes
//	                                        numbered seq, seq+1, ... (changes.go)
//	contexts(id, kind, body, created)       @contexts, shared by all tenants
//	subscriptions(tenant, id, doc, status)  NGSI-LD subscriptions, opaque documents
//	n_queue(nid, tenant, sub, created, body) notifications waiting for delivery; nid increasing, never reused
//	n_cursor(k, seq)                        how far the notifier has read the change log
//	leases(name, holder, expires)           work one instance at a time runs (migration 2, lease.go)
//	records(kind, tenant, id, doc)          small opaque documents that are not entities (migration 4,
//	                                        records.go)
var coreMigrations = []migration{
	{1, `
CREATE TABLE tenants (
	tid  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text COLLATE "C" NOT NULL UNIQUE
);
INSERT INTO tenants (name) VALUES ('');

CREATE TABLE entities (
	tid    bigint NOT NULL,
	id     text COLLATE "C" NOT NULL,
	eid    bigint GENERATED ALWAYS AS IDENTITY,
	ver    bigint NOT NULL DEFAULT 1,
	types  text[] COLLATE "C" NOT NULL,
	attrs  text[] COLLATE "C" NOT NULL,
	scopes text[] COLLATE "C" NOT NULL,
	doc    bytea NOT NULL,
	PRIMARY KEY (tid, id)
) WITH (fillfactor = 80);
CREATE UNIQUE INDEX entities_order ON entities (tid, eid);
CREATE INDEX entities_types ON entities USING gin (types);
CREATE INDEX entities_attrs ON entities USING gin (attrs);

-- PostGIS when the server has it and we may install it, unless the setting
-- zenne.postgis is 'off'; the native box type otherwise. Both only select
-- candidates. The store reads which one this database has from the
-- column's type (geo.go).
DO $do$
DECLARE
	want boolean := coalesce(current_setting('zenne.postgis', true), '') <> 'off';
BEGIN
	IF want THEN
		BEGIN
			CREATE EXTENSION IF NOT EXISTS postgis;
		EXCEPTION WHEN OTHERS THEN
			RAISE NOTICE 'PostGIS not available (%): geo-queries select candidates by bounding box', SQLERRM;
		END;
	END IF;
	IF want AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis') THEN
		EXECUTE $q$CREATE TABLE entity_geo (
			tid  bigint NOT NULL,
			id   text COLLATE "C" NOT NULL,
			name  text COLLATE "C" NOT NULL,
			types text[] COLLATE "C" NOT NULL,
			geom  geometry(Geometry, 4326) NOT NULL
		)$q$;
	ELSE
		EXECUTE $q$CREATE TABLE entity_geo (
			tid  bigint NOT NULL,
			id   text COLLATE "C" NOT NULL,
			name  text COLLATE "C" NOT NULL,
			types text[] COLLATE "C" NOT NULL,
			geom  box NOT NULL
		)$q$;
	END IF;
END
$do$;
CREATE INDEX entity_geo_entity ON entity_geo (tid, id);
CREATE INDEX entity_geo_geom ON entity_geo USING gist (geom);

CREATE TABLE type_counts (
	tid  bigint NOT NULL,
	type text COLLATE "C" NOT NULL,
	n    bigint NOT NULL,
	PRIMARY KEY (tid, type)
);
CREATE TABLE attr_counts (
	tid  bigint NOT NULL,
	name text COLLATE "C" NOT NULL,
	n    bigint NOT NULL,
	PRIMARY KEY (tid, name)
);
CREATE TABLE type_attrs (
	tid  bigint NOT NULL,
	type text COLLATE "C" NOT NULL,
	name text COLLATE "C" NOT NULL,
	kind text COLLATE "C" NOT NULL,
	n    bigint NOT NULL,
	PRIMARY KEY (tid, type, name, kind)
);

CREATE TABLE change_seq (
	id   int PRIMARY KEY CHECK (id = 1),
	last bigint NOT NULL
);
INSERT INTO change_seq (id, last) VALUES (1, 0);
CREATE TABLE changes (
	seq  bigint PRIMARY KEY,
	n    int NOT NULL,
	data bytea NOT NULL
);
-- Written once, read by consumers: not worth compressing on the write path.
ALTER TABLE changes ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE contexts (
	id      text COLLATE "C" PRIMARY KEY,
	kind    text NOT NULL,
	body    bytea NOT NULL,
	created bigint NOT NULL -- unix ns
);

CREATE TABLE subscriptions (
	tenant text COLLATE "C" NOT NULL,
	id     text COLLATE "C" NOT NULL,
	doc    bytea NOT NULL,
	status bytea NOT NULL,
	PRIMARY KEY (tenant, id)
);
CREATE TABLE n_queue (
	nid     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant  text COLLATE "C" NOT NULL,
	sub     text COLLATE "C" NOT NULL,
	created bigint NOT NULL, -- unix ns
	body    bytea NOT NULL
);
CREATE INDEX n_queue_sub ON n_queue (tenant, sub, nid);
CREATE TABLE n_cursor (
	k   text PRIMARY KEY,
	seq bigint NOT NULL
);
`},
	{2, `
-- Leases (lease.go): work that must run on one instance at a time.
CREATE TABLE leases (
	name    text PRIMARY KEY,
	holder  text NOT NULL,
	expires timestamptz NOT NULL
);
`},
	{3, `
-- entity_geo holds one row per type of the entity, and its GiST index holds,
-- beside the geometry, the tenant and a 64-bit hash of the type and the
-- attribute's name: a query by type and place then fetches from the table
-- only the rows of its type, not every row in the box (a tenth of them with
-- ten types). A hash, not the texts: long IRIs in a GiST index cost more to
-- compare than the heap fetches they save. Multi-column GiST indexes on
-- scalar columns need btree_gist (in PostgreSQL's contrib); without it, the
-- index holds the geometry alone.
CREATE TABLE entity_geo_t AS
	SELECT g.tid, g.id, g.name, t AS type, hashtextextended(t || ' ' || g.name, 0) AS tkey, g.geom
	FROM entity_geo AS g, unnest(g.types) AS t;
DROP TABLE entity_geo;
ALTER TABLE entity_geo_t RENAME TO entity_geo;
ALTER TABLE entity_geo ALTER tid SET NOT NULL, ALTER id SET NOT NULL, ALTER name SET NOT NULL,
	ALTER type SET NOT NULL, ALTER tkey SET NOT NULL, ALTER geom SET NOT NULL;
CREATE INDEX entity_geo_entity ON entity_geo (tid, id);
DO $do$
BEGIN
	BEGIN
		CREATE EXTENSION IF NOT EXISTS btree_gist;
	EXCEPTION WHEN OTHERS THEN
		RAISE NOTICE 'btree_gist not available (%): the geometry index holds geometries only', SQLERRM;
	END;
	IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist') THEN
		CREATE INDEX entity_geo_geom ON entity_geo USING gist (geom, tkey, tid);
	ELSE
		CREATE INDEX entity_geo_geom ON entity_geo USING gist (geom);
	END IF;
END
$do$;
ANALYZE entity_geo;
`},
	{4, `
-- Records (records.go): small opaque documents that are not entities
-- (device registrations, alarm rules, ...), by kind, tenant and id.
CREATE TABLE records (
	kind   text COLLATE "C" NOT NULL,
	tenant text COLLATE "C" NOT NULL,
	id     text COLLATE "C" NOT NULL,
	doc    bytea NOT NULL,
	PRIMARY KEY (kind, tenant, id)
);
`},
}
