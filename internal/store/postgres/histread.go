package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/histcore"
	"github.com/zenne-city/zenne/internal/tsz"
)

var (
	_ store.History         = (*Store)(nil)
	_ store.HistoryImporter = (*Store)(nil)
)

// seriesKey names a series within one entity: its attribute and datasetId.
type seriesKey = histcore.SeriesKey[string]

func sameName(n string) string { return n }

// A read is one statement: the head records, the series and the chunks of
// a page of entities, UNION ALL, in rows of one shape (readRow), so that
// they come from one snapshot without a transaction. $1 is the tenant, $2
// the entity ids, $3 the attribute names wanted (NULL: all), $4 and $5 the
// first and last day of the window.
const (
	// The head records of the entities (kind 0), with their keys: the
	// newest record's types win.
	sqlHeadsPart = `SELECT 0::int2 AS kind, i.ord, h.at, h.seq, NULL::text[] AS types, NULL::bigint AS sid,
			NULL::text AS name, NULL::text AS dataset, 0::int4 AS day, 0::int4 AS part, 0::int2 AS level,
			0::int4 AS n, 0::int4 AS numn, NULL::float8 AS sum, NULL::float8 AS sumsq, NULL::float8 AS min,
			NULL::float8 AS max, h.rec AS data
		FROM unnest($2::text[]) WITH ORDINALITY AS i(id, ord) JOIN h_head AS h ON h.tid = $1 AND h.id = i.id`
	// The entities with sealed history (kind 1), with their types, once per
	// wanted series (sid NULL when none).
	sqlSeriesPart = `SELECT 1::int2, i.ord, 0::int8, 0::int8, e.types, s.sid, s.name, s.dataset, 0::int4, 0::int4, 0::int2,
			0::int4, 0::int4, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::bytea
		FROM unnest($2::text[]) WITH ORDINALITY AS i(id, ord)
		JOIN h_entities AS e ON e.tid = $1 AND e.id = i.id
		LEFT JOIN h_series AS s ON s.hid = e.hid AND ($3::text[] IS NULL OR s.name = ANY($3))`
	// The start of a statement reading chunks (kind 2) of the wanted
	// series, aliased c.
	sqlChunksFrom = `FROM unnest($2::text[]) AS i(id)
		JOIN h_entities AS e ON e.tid = $1 AND e.id = i.id
		JOIN h_series AS s ON s.hid = e.hid AND ($3::text[] IS NULL OR s.name = ANY($3))`
	sqlChunkCols = `SELECT 2::int2, 0::int8, 0::int8, 0::int8, NULL::text[], s.sid, NULL::text, NULL::text, c.day, c.part, c.level,
			c.n, c.numn, c.sum, c.sumsq, c.min, c.max, `

	// The chunks holding instances of the wanted series in [$4, $5], in no
	// order (sorting them is the reader's: a year of a thousand sensors
	// would spill PostgreSQL's sort to disk).
	sqlRead = sqlHeadsPart + "\nUNION ALL\n" + sqlSeriesPart + "\nUNION ALL\n" + sqlChunkCols + `c.data ` + sqlChunksFrom + `
		JOIN h_chunks AS c ON c.sid = s.sid AND c.day BETWEEN $4 AND $5 AND c.level = 0`
	// lastN: the chunks of each wanted series' newest day in [$4, $5].
	sqlReadNewest = sqlHeadsPart + "\nUNION ALL\n" + sqlSeriesPart + "\nUNION ALL\n" + sqlChunkCols + `c.data ` + sqlChunksFrom + `
		CROSS JOIN LATERAL (SELECT max(x.day) AS day FROM h_chunks AS x
			WHERE x.sid = s.sid AND x.day BETWEEN $4 AND $5 AND x.level = 0) AS m
		JOIN h_chunks AS c ON c.sid = s.sid AND c.day = m.day AND c.level = 0`
	// Aggregation: chunks of every level in [$4, $5] (rollups count).
	sqlReadAgg = sqlHeadsPart + "\nUNION ALL\n" + sqlSeriesPart + "\nUNION ALL\n" + sqlChunkCols + `c.data ` + sqlChunksFrom + `
		JOIN h_chunks AS c ON c.sid = s.sid AND c.day BETWEEN $4 AND $5`
	// The same without the chunks' data, when whole days can be taken from
	// their summaries: read from the primary key index alone. The data of
	// the other chunks is read by key (sqlChunkData).
	sqlReadSums = sqlHeadsPart + "\nUNION ALL\n" + sqlSeriesPart + "\nUNION ALL\n" + sqlChunkCols + `NULL::bytea ` + sqlChunksFrom + `
		JOIN h_chunks AS c ON c.sid = s.sid AND c.day BETWEEN $4 AND $5`
	sqlChunkData = `SELECT k.ord, c.data FROM unnest($1::int8[], $2::int4[], $3::int4[]) WITH ORDINALITY AS k(sid, day, part, ord)
		JOIN h_chunks AS c ON c.sid = k.sid AND c.day = k.day AND c.part = k.part`

	// The newest days of one series in [$2, $3] holding at least $4+1 chunk
	// rows (all of them when there are fewer), whole days only.
	sqlOlder = `SELECT day, part, data FROM h_chunks WHERE sid = $1 AND day BETWEEN $2 AND $3 AND level = 0
		AND day >= coalesce((SELECT day FROM h_chunks WHERE sid = $1 AND day BETWEEN $2 AND $3 AND level = 0
			ORDER BY day DESC, part DESC OFFSET $4 LIMIT 1), $2)`
)

// EntityHistory returns one entity's recorded instances that q selects
// (EntityHistories for one entity).
func (s *Store) EntityHistory(ctx context.Context, tenant, id string, attrs []string, q *temporal.Query) (*temporal.Entity, error) {
	hs, err := s.EntityHistories(ctx, tenant, []string{id}, attrs, q)
	if err != nil {
		return nil, err
	}
	if hs[0] == nil {
		return nil, store.ErrNotFound
	}
	return hs[0], nil
}

// EntityHistories returns the recorded instances of a page of entities
// that q selects (nil for an entity without history), from their head
// records and sealed chunks, with one statement for all of them: the head
// records, the series and their chunks (for lastN, each series' newest
// day). With lastN, a series that needs more than its newest day reads
// older days, newest first, all such series of a round together, in the
// same REPEATABLE READ snapshot.
func (s *Store) EntityHistories(ctx context.Context, tenant string, ids []string, attrs []string, q *temporal.Query) ([]*temporal.Entity, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	tid, err := s.tenantID(ctx, s.pool, tenant)
	if err != nil {
		return nil, s.wrapClosed(err)
	}
	if q == nil {
		q = &temporal.Query{}
	}
	out := make([]*temporal.Entity, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	uniq, pos := distinctIDs(ids) // one reader per distinct id
	readers := make([]*histReader, len(uniq))
	for i := range readers {
		readers[i] = newHistReader(q, attrs)
	}
	lo, hi := dayRange(q)
	names := namesArg(attrs)
	if histcore.NewestFirst(q) {
		err = s.readSnapshot(ctx, func(tx pgx.Tx) error {
			sers, chunks, err := readRows(ctx, tx, readers, sqlReadNewest, tid, uniq, names, lo, hi)
			if err != nil {
				return err
			}
			return readLastN(ctx, tx, q, readers, sers, chunks)
		})
	} else {
		var sers map[int64]seriesRef
		var chunks map[int64][]chunk
		if sers, chunks, err = readRows(ctx, s.pool, readers, sqlRead, tid, uniq, names, lo, hi); err == nil {
			for sid, cs := range chunks {
				x := sers[sid]
				if err = readers[x.i].addChunks(x.key, cs); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		return nil, s.wrapClosed(fmt.Errorf("postgres: reading history: %w", err))
	}
	built := make([]*temporal.Entity, len(uniq))
	for i, r := range readers {
		if r.found {
			if built[i], err = histcore.Entity(uniq[i], r.types, r.series, q, sameName); err != nil {
				return nil, fmt.Errorf("postgres: history of %s: %w", uniq[i], err)
			}
		}
	}
	for i, id := range ids {
		out[i] = built[pos[id]]
	}
	return out, nil
}

// distinctIDs returns the distinct ids of a page in order and where each id
// is among them: a statement reading an id twice would return its rows
// twice.
func distinctIDs(ids []string) (uniq []string, pos map[string]int) {
	uniq = make([]string, 0, len(ids))
	pos = make(map[string]int, len(ids))
	for _, id := range ids {
		if _, ok := pos[id]; !ok {
			pos[id] = len(uniq)
			uniq = append(uniq, id)
		}
	}
	return uniq, pos
}

// HistoryEntityIDs returns the id of every entity of tenant with recorded
// history, sealed or in head records, sorted (byte order: the columns are
// COLLATE "C"); none for a tenant that does not exist (store.Exporter).
func (s *Store) HistoryEntityIDs(ctx context.Context, tenant string) ([]string, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	tid, err := s.tenantID(ctx, s.pool, tenant)
	if errors.Is(err, store.ErrNoTenant) {
		return nil, nil
	}
	if err != nil {
		return nil, s.wrapClosed(err)
	}
	rows, err := s.pool.Query(ctx, `SELECT id FROM h_entities WHERE tid = $1 UNION SELECT id FROM h_head WHERE tid = $1 ORDER BY 1`, tid)
	if err != nil {
		return nil, s.wrapClosed(fmt.Errorf("postgres: history entities: %w", err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, s.wrapClosed(fmt.Errorf("postgres: history entities: %w", err))
	}
	return ids, nil
}

// readSnapshot runs f in a read-only REPEATABLE READ transaction: every
// statement of f sees the same snapshot, so a head record sealed meanwhile
// is seen once, in the head or in its chunk (one statement alone has one
// snapshot: reads of one statement need no transaction).
func (s *Store) readSnapshot(ctx context.Context, f func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, f)
}

// histReader collects the samples of one entity's series.
type histReader struct {
	q     *temporal.Query
	want  map[string]bool // nil: every attribute
	found bool            // the entity has history (head records or sealed)
	types []string        // of the newest head record, else sealedTypes
	// sealedTypes are the types sealing (or an import) last stored.
	sealedTypes []string
	series      map[seriesKey][]tsz.Sample
}

func newHistReader(q *temporal.Query, attrs []string) *histReader {
	r := &histReader{q: q, series: map[seriesKey][]tsz.Sample{}}
	if len(attrs) > 0 {
		r.want = make(map[string]bool, len(attrs))
		for _, a := range attrs {
			r.want[a] = true
		}
	}
	return r
}

func (r *histReader) wants(name string) bool { return r.want == nil || r.want[name] }

// addHead adds the wanted instances of one head record; its types are the
// entity's newest.
func (r *histReader) addHead(doc []byte) error {
	types, insts, err := decodeHeadRecord(doc)
	if err != nil {
		return err
	}
	r.found, r.types = true, types
	for _, in := range insts {
		if r.wants(in.name) {
			k := seriesKey{Name: in.name, Dataset: in.dataset}
			r.series[k] = append(r.series[k], in.s)
		}
	}
	return nil
}

// addChunks decodes chunks of series k (sorted here by day and part) into
// its samples.
func (r *histReader) addChunks(k seriesKey, cs []chunk) error {
	sortChunks(cs)
	for _, c := range cs {
		var err error
		if r.series[k], err = tsz.Decode(c.data, r.series[k]); err != nil {
			return fmt.Errorf("chunk of %s day %d: %w", k.Name, c.day, err)
		}
	}
	return nil
}

// chunk is one chunk row read.
type chunk struct {
	day   int64
	part  int32
	level int16
	data  []byte // nil when the read took only its summary
	sum   tsz.Summary
}

// sortChunks puts chunks in day order, parts in order: the order their
// samples were written in.
func sortChunks(cs []chunk) {
	slices.SortFunc(cs, func(a, b chunk) int {
		if c := cmp.Compare(a.day, b.day); c != 0 {
			return c
		}
		return cmp.Compare(a.part, b.part)
	})
}

// seriesRef is a series of entity i of a read.
type seriesRef struct {
	i   int
	key seriesKey
}

// dayRange is the range of days q's window covers (histcore.Days), within
// the days h_chunks can hold.
func dayRange(q *temporal.Query) (lo, hi int32) {
	l, h := histcore.Days(q)
	return int32(max(l, math.MinInt32)), int32(min(h, math.MaxInt32))
}

// namesArg is attrs as the $3 of the statements: NULL for all.
func namesArg(attrs []string) []string {
	if len(attrs) == 0 {
		return nil
	}
	return attrs
}

// readRows runs a read statement (sqlRead...) with args and adds what it
// returns to readers: the head records (in the order they were recorded)
// and the entities' types; it returns the series found by sid, and the
// chunks read by sid, for the caller to decode.
func readRows(ctx context.Context, q rowQuerier, readers []*histReader, sql string, args ...any) (map[int64]seriesRef, map[int64][]chunk, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	type head struct {
		i       int
		at, seq int64
		rec     []byte
	}
	var heads []head
	sers := map[int64]seriesRef{}
	chunks := map[int64][]chunk{}
	var kind int16
	var ord, at, seq int64
	var types []string
	var sid *int64
	var name, dataset *string
	var day, part, n, numn int32
	var level int16
	var sum, sumsq, lo, hi *float64
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&kind, &ord, &at, &seq, &types, &sid, &name, &dataset, &day, &part, &level,
			&n, &numn, &sum, &sumsq, &lo, &hi, &data); err != nil {
			return nil, nil, err
		}
		switch kind {
		case 0:
			heads = append(heads, head{int(ord - 1), at, seq, data})
		case 1:
			r := readers[ord-1]
			r.found = true
			r.sealedTypes = types
			if sid != nil {
				sers[*sid] = seriesRef{int(ord - 1), seriesKey{Name: *name, Dataset: *dataset}}
			}
		case 2:
			c := chunk{day: int64(day), part: part, level: level, data: data, sum: tsz.Summary{N: int(n), NumN: int(numn)}}
			if sum != nil && sumsq != nil && lo != nil && hi != nil {
				c.sum.Sum, c.sum.SumSq, c.sum.Min, c.sum.Max = *sum, *sumsq, *lo, *hi
			}
			chunks[*sid] = append(chunks[*sid], c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	for sid := range chunks {
		if _, ok := sers[sid]; !ok {
			return nil, nil, fmt.Errorf("chunks of series %d, which the read did not find", sid) // one snapshot: cannot happen
		}
	}
	slices.SortFunc(heads, func(a, b head) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	for _, h := range heads {
		if err := readers[h.i].addHead(h.rec); err != nil {
			return nil, nil, fmt.Errorf("head record %d: %w", h.seq, err)
		}
	}
	for _, r := range readers {
		if r.types == nil {
			r.types = r.sealedTypes
		}
	}
	return sers, chunks, nil
}

// readLastN adds the chunks of each series' newest day to its reader and,
// for the series the head and that day do not give q.LastN instances, reads
// older days newest first until they do, in tx (the snapshot of the
// statement that read the newest days).
func readLastN(ctx context.Context, tx pgx.Tx, q *temporal.Query, readers []*histReader, sers map[int64]seriesRef, chunks map[int64][]chunk) error {
	lo, _ := dayRange(q)
	var pending []int64
	older := map[int64]int32{} // sid -> the last day still to read
	for sid, cs := range chunks {
		x := sers[sid]
		if err := readers[x.i].addChunks(x.key, cs); err != nil {
			return err
		}
		day := cs[0].day // one day
		if !histcore.HasLastN(q, readers[x.i].series[x.key], day) && day > int64(lo) {
			pending = append(pending, sid)
			older[sid] = int32(day - 1)
		}
	}
	slices.Sort(pending) // a stable order of statements
	for k := int64(8); len(pending) > 0; k *= 4 {
		b := &pgx.Batch{}
		for _, sid := range pending {
			b.Queue(sqlOlder, sid, lo, older[sid], k)
		}
		br := tx.SendBatch(ctx, b)
		next, err := readOlder(br, q, readers, sers, pending, older, k)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		pending = next
	}
	return nil
}

// readOlder reads the results of one round of sqlOlder statements, one per
// series of pending, and returns the series that still need older days
// (their next day to read in older).
func readOlder(br pgx.BatchResults, q *temporal.Query, readers []*histReader, sers map[int64]seriesRef, pending []int64, older map[int64]int32, k int64) ([]int64, error) {
	var next []int64
	for _, sid := range pending {
		x := sers[sid]
		rows, err := br.Query()
		if err != nil {
			return nil, err
		}
		var cs []chunk
		for rows.Next() {
			var c chunk
			if err := rows.Scan(&c.day, &c.part, &c.data); err != nil {
				rows.Close()
				return nil, err
			}
			cs = append(cs, c)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(cs) == 0 {
			continue // nothing older in the window
		}
		// Newest day first, until the series has enough.
		sortChunks(cs)
		r := readers[x.i]
		enough := false
		for end := len(cs); end > 0 && !enough; {
			day := cs[end-1].day
			start := end
			for start > 0 && cs[start-1].day == day {
				start--
			}
			if err := r.addChunks(x.key, cs[start:end]); err != nil {
				return nil, err
			}
			end = start
			enough = histcore.HasLastN(q, r.series[x.key], day)
		}
		if !enough && int64(len(cs)) > k { // else the statement had all that is left
			older[sid] = int32(cs[0].day - 1)
			next = append(next, sid)
		}
	}
	return next, nil
}
