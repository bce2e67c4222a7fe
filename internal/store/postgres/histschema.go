package postgres

// histMigrations create the history store's tables (versions 100-199).
// Never edit a released migration: add one.
//
// Layout (tid = tenant id; text keys are COLLATE "C", as in schema.go):
//
//	h_head(at, seq, tid, id, rec)   recent history: one row per entity write, written by the write
//	                                transaction (histwrite.go); at is the commit time in ns. Keyed by
//	                                (at, seq) so every write appends at the end of the key and sealing
//	                                takes the oldest rows by a range scan; found by entity through
//	                                h_head_entity
//	h_entities(hid, tid, id, types) entities with sealed history
//	h_series(sid, hid, name, dataset)
//	                                one per attribute instance with sealed history
//	h_chunks(sid, day, part, level, n, numn, sum, sumsq, min, max, data)
//	                                a series' samples of one UTC day (days since the epoch) compressed by
//	                                internal/tsz, in parts of at most histcore.PartMax samples; level 1
//	                                and 2 hold rollups instead (histretain.go). n, numn, sum, sumsq, min
//	                                and max are the day's rollup (what the tsz header holds: samples,
//	                                numeric samples and their sum, sum of squares, minimum, maximum; NULL
//	                                without numbers), so aggregating whole days reads no samples.
//	                                Partitioned by month of day (histpart.go): partitions are attached
//	                                as data arrives and ahead of time, and retention drops whole months
//	                                once every rule is past them
//	h_jobs(name, last_run)          when a background job last ran, so one that several processes
//	                                schedule runs once (retention)
var histMigrations = []migration{
	{100, `
CREATE TABLE h_head (
	at  bigint NOT NULL,
	seq bigint GENERATED ALWAYS AS IDENTITY,
	tid bigint NOT NULL,
	id  text COLLATE "C" NOT NULL,
	rec bytea NOT NULL,
	PRIMARY KEY (at, seq)
);
CREATE INDEX h_head_entity ON h_head (tid, id);

CREATE TABLE h_entities (
	hid   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tid   bigint NOT NULL,
	id    text COLLATE "C" NOT NULL,
	types text[] COLLATE "C" NOT NULL,
	UNIQUE (tid, id)
);

CREATE TABLE h_series (
	sid     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	hid     bigint NOT NULL,
	name    text COLLATE "C" NOT NULL,
	dataset text COLLATE "C" NOT NULL,
	UNIQUE (hid, name, dataset)
);

CREATE TABLE h_chunks (
	sid   bigint NOT NULL,
	day   integer NOT NULL,
	part  integer NOT NULL,
	level smallint NOT NULL,
	n     integer NOT NULL,
	numn  integer NOT NULL,
	sum   double precision,
	sumsq double precision,
	min   double precision,
	max   double precision,
	data  bytea NOT NULL,
	PRIMARY KEY (sid, day, part)
) PARTITION BY RANGE (day);
-- Chunks are compressed already: never try pglz on them (partitions
-- inherit the storage).
ALTER TABLE h_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE h_jobs (
	name     text PRIMARY KEY,
	last_run bigint NOT NULL -- unix ns
);
`},
	{101, `
-- The primary key index carries each chunk's summary columns: an
-- aggregation over whole days reads them by index-only scans, a series'
-- days side by side in the index, instead of a heap page per chunk.
ALTER TABLE h_chunks DROP CONSTRAINT h_chunks_pkey;
ALTER TABLE h_chunks ADD PRIMARY KEY (sid, day, part) INCLUDE (level, n, numn, sum, sumsq, min, max);
`},
}
