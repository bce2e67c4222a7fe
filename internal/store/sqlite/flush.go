package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// A group transaction applies every op in memory and records, per entity
// touched, its state at the start of the group and its final state. flush
// turns the net difference into multi-row statements, one table at a time,
// so a group of N ops costs a few statements per table instead of about ten
// single-row statements per op.

// maxChunkRows is the most rows one multi-row statement carries (a power of
// two, well under SQLite's variable limit for the widest table, entities).
const maxChunkRows = 256

// maxGeoChunkRows is smaller: every R*Tree has its own statements.
const maxGeoChunkRows = 32

// maxGeoStmts bounds the statements kept for R*Trees (a tenant may have
// thousands of trees); past it they are all closed and prepared again.
const maxGeoStmts = 512

// multiKey identifies a multi-row statement of the writer: a table operation
// (z for the R*Tree of geo operations) and its number of rows.
type multiKey struct {
	op multiOp
	z  int64
	n  int
}

type multiOp int

const (
	opEntIns multiOp = iota
	opEntUpd
	opEntDel
	opTypeIns
	opTypeDel
	opHasIns
	opHasDel
	opNumIns
	opNumDel
	opTxtIns
	opTxtDel
	opTypeN
	opAttrN
	opTAN
	opGeoIns
	opGeoDel
)

// multiSQL is each operation's statement as head + n tuples joined by ',' +
// tail, or a one-row statement (one) run once per row.
var multiSQL = [...]struct {
	cols              int
	head, tuple, tail string
	one               string
}{
	opEntIns: {cols: 7, head: `INSERT INTO entities (eid, tid, id, ver, created, modified, doc) VALUES `, tuple: `(?,?,?,?,?,?,?)`},
	// Measured: UPDATE ... FROM (VALUES ...) costs half as much per row as
	// INSERT ... ON CONFLICT DO UPDATE of existing rows.
	opEntUpd: {cols: 5, head: `UPDATE entities SET ver = v.column2, created = v.column3, modified = v.column4, doc = v.column5 FROM (VALUES `, tuple: `(?,?,?,?,?)`, tail: `) AS v WHERE entities.eid = v.column1`},
	opEntDel: {cols: 1, head: `DELETE FROM entities WHERE eid IN (`, tuple: `?`, tail: `)`},
	// Index rows are deleted one by one. Measured: a one-row DELETE by
	// primary key costs less per row than "(key) IN (VALUES ...)" with 32
	// rows, which fills two temporary B-trees.
	opTypeIns: {cols: 3, head: `INSERT INTO entity_types (tid, type, eid) VALUES `, tuple: `(?,?,?)`},
	opTypeDel: {cols: 3, one: `DELETE FROM entity_types WHERE tid = ? AND type = ? AND eid = ?`},
	opHasIns:  {cols: 3, head: `INSERT INTO attr_has (tid, name, eid) VALUES `, tuple: `(?,?,?)`},
	opHasDel:  {cols: 3, one: `DELETE FROM attr_has WHERE tid = ? AND name = ? AND eid = ?`},
	opNumIns:  {cols: 4, head: `INSERT INTO attr_num (tid, name, num, eid) VALUES `, tuple: `(?,?,?,?)`},
	opNumDel:  {cols: 4, one: `DELETE FROM attr_num WHERE tid = ? AND name = ? AND num = ? AND eid = ?`},
	opTxtIns:  {cols: 4, head: `INSERT INTO attr_txt (tid, name, txt, eid) VALUES `, tuple: `(?,?,?,?)`},
	opTxtDel:  {cols: 4, one: `DELETE FROM attr_txt WHERE tid = ? AND name = ? AND txt = ? AND eid = ?`},
	opTypeN:   {cols: 3, head: `INSERT INTO type_counts (tid, type, n) VALUES `, tuple: `(?,?,?)`, tail: ` ON CONFLICT (tid, type) DO UPDATE SET n = n + excluded.n`},
	opAttrN:   {cols: 4, head: `INSERT INTO attr_counts (tid, name, n, nx) VALUES `, tuple: `(?,?,?,?)`, tail: ` ON CONFLICT (tid, name) DO UPDATE SET n = n + excluded.n, nx = nx + excluded.nx`},
	opTAN:     {cols: 5, head: `INSERT INTO type_attrs (tid, type, name, kind, n) VALUES `, tuple: `(?,?,?,?,?)`, tail: ` ON CONFLICT (tid, type, name, kind) DO UPDATE SET n = n + excluded.n`},
	opGeoIns:  {cols: 5, head: `INSERT INTO geo_%d (id, minx, maxx, miny, maxy) VALUES `, tuple: `(?,?,?,?,?)`},
	opGeoDel:  {cols: 1, head: `DELETE FROM geo_%d WHERE id IN (`, tuple: `?`, tail: `)`},
}

// multiStmt returns the statement of k, prepared once and kept by the writer.
func (w *writer) multiStmt(ctx context.Context, k multiKey) (*sql.Stmt, error) {
	if st := w.multi[k]; st != nil {
		return st, nil
	}
	if k.op == opGeoIns || k.op == opGeoDel {
		if w.geoStmts >= maxGeoStmts {
			w.dropGeoStmts()
		}
		w.geoStmts++
	}
	m := multiSQL[k.op]
	head := m.head
	if k.op == opGeoIns || k.op == opGeoDel {
		head = fmt.Sprintf(head, k.z)
	}
	var b strings.Builder
	if m.one != "" {
		b.WriteString(m.one)
	} else {
		b.Grow(len(head) + k.n*(len(m.tuple)+1) + len(m.tail))
		b.WriteString(head)
		for i := range k.n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(m.tuple)
		}
		b.WriteString(m.tail)
	}
	st, err := w.c.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("prepare %d-row statement: %w", k.n, err)
	}
	w.multi[k] = st
	return st, nil
}

// dropGeoStmts forgets the statements naming R*Trees, which a rolled back
// transaction may have created.
func (w *writer) dropGeoStmts() {
	for k, st := range w.multi {
		if k.op == opGeoIns || k.op == opGeoDel {
			st.Close()
			delete(w.multi, k)
		}
	}
	w.geoStmts = 0
}

// execRows runs op (on R*Tree z) over the rows in args, the values of each
// row in column order, in chunks of maxChunkRows rows, and a remainder split
// in powers of two so few distinct statements are ever prepared.
func (t *tx) execRows(op multiOp, z int64, args []any) error {
	cols := multiSQL[op].cols
	n := len(args) / cols
	most := maxChunkRows
	if op == opGeoIns || op == opGeoDel {
		most = maxGeoChunkRows
	}
	if multiSQL[op].one != "" {
		most = 1
	}
	for n > 0 {
		c := min(n, most)
		c = 1 << (bits.Len(uint(c)) - 1)
		st, err := t.w.multiStmt(t.ctx, multiKey{op, z, c})
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(t.ctx, args[:c*cols]...); err != nil {
			return err
		}
		args, n = args[c*cols:], n-c
	}
	return nil
}

// touch is one entity changed by the group: its committed state before the
// group (existed, orig) and its state now (final; final.ent nil = deleted).
type touch struct {
	tid     int64
	id      string
	existed bool
	orig    *indexRows
	final   *entState
}

// rowBufs are the rows a flush writes, per table operation.
type rowBufs struct {
	ops [opGeoIns][]any
	idx [opTxtDel + 1][]idxRow // rows of the index tables, sorted before writing
	geo map[[2]int64][]any     // (opGeoIns|opGeoDel, z) -> rows
}

// idxRow is a row of entity_types (name = type), attr_has, attr_num (num)
// or attr_txt (txt).
type idxRow struct {
	tid, name int64
	num       float64
	txt       string
	eid       int64
}

func (b *rowBufs) addIdx(op multiOp, r idxRow) { b.idx[op] = append(b.idx[op], r) }

// idxArgs returns the rows of op in primary key order (B-tree inserts and
// deletes in key order touch each page once) as statement arguments.
func (b *rowBufs) idxArgs(op multiOp) []any {
	rows := b.idx[op]
	if len(rows) == 0 {
		return nil
	}
	slices.SortFunc(rows, func(x, y idxRow) int {
		if c := cmp.Compare(x.tid, y.tid); c != 0 {
			return c
		}
		if c := cmp.Compare(x.name, y.name); c != 0 {
			return c
		}
		if c := cmp.Compare(x.num, y.num); c != 0 {
			return c
		}
		if c := strings.Compare(x.txt, y.txt); c != 0 {
			return c
		}
		return cmp.Compare(x.eid, y.eid)
	})
	args := make([]any, 0, len(rows)*multiSQL[op].cols)
	for _, r := range rows {
		switch op {
		case opNumIns, opNumDel:
			args = append(args, r.tid, r.name, r.num, r.eid)
		case opTxtIns, opTxtDel:
			args = append(args, r.tid, r.name, r.txt, r.eid)
		default:
			args = append(args, r.tid, r.name, r.eid)
		}
	}
	return args
}

func (b *rowBufs) add(op multiOp, vals ...any) { b.ops[op] = append(b.ops[op], vals...) }

func (b *rowBufs) addGeo(op multiOp, z int64, vals ...any) {
	if b.geo == nil {
		b.geo = map[[2]int64][]any{}
	}
	k := [2]int64{int64(op), z}
	b.geo[k] = append(b.geo[k], vals...)
}

// flush writes the net effect of the group's ops: entity rows, index rows,
// R*Tree entries and counters.
func (t *tx) flush() error {
	b := &t.bufs
	slices.Sort(t.order)
	touches := make([]*touch, len(t.order))
	for i, eid := range t.order {
		touches[i] = t.touched[eid]
	}
	docs, err := encodeFinal(touches)
	if err != nil {
		return err
	}
	now := time.Now()
	for i, eid := range t.order {
		tc := touches[i]
		fin := tc.final
		if !tc.existed && fin.ent == nil {
			continue // created and deleted within the group
		}
		if fin.ent == nil {
			b.add(opEntDel, eid)
			t.tenantN[tc.tid]--
		} else {
			created, modified := unixNano(fin.ent.CreatedAt, now), unixNano(fin.ent.ModifiedAt, now)
			if tc.existed {
				b.add(opEntUpd, eid, fin.ver, created, modified, docs[i])
			} else {
				b.add(opEntIns, eid, tc.tid, tc.id, fin.ver, created, modified, docs[i])
				t.tenantN[tc.tid]++
			}
		}
		if err := t.updateIndex(tc.tid, eid, tc.orig, fin.rows); err != nil {
			return fmt.Errorf("index %s: %w", tc.id, err)
		}
	}
	// Deletes before inserts: a (tid, id) or an index row freed by one
	// entity may be taken by another.
	for _, op := range []multiOp{opEntDel, opEntUpd, opEntIns, opTypeDel, opTypeIns, opHasDel, opHasIns,
		opNumDel, opNumIns, opTxtDel, opTxtIns} {
		args := b.ops[op]
		if op >= opTypeIns {
			args = b.idxArgs(op)
		}
		if err := t.execRows(op, 0, args); err != nil {
			return fmt.Errorf("write %s: %w", tableOf(op), err)
		}
	}
	for _, op := range []multiOp{opGeoDel, opGeoIns} {
		for k, args := range b.geo {
			if multiOp(k[0]) != op {
				continue
			}
			if err := t.execRows(op, k[1], args); err != nil {
				return fmt.Errorf("index geometry: %w", err)
			}
		}
	}
	return t.flushCounters()
}

func tableOf(op multiOp) string {
	s := multiSQL[op].head + multiSQL[op].one
	for _, kw := range []string{"INSERT INTO ", "DELETE FROM ", "UPDATE "} {
		s = strings.TrimPrefix(s, kw)
	}
	name, _, _ := strings.Cut(s, " ")
	return name
}

func (t *tx) flushCounters() error {
	w, ctx := t.w, t.ctx
	for tid, d := range t.tenantN {
		if d == 0 {
			continue
		}
		if _, err := w.addTenantN.ExecContext(ctx, d, tid); err != nil {
			return fmt.Errorf("count entities: %w", err)
		}
	}
	var args []any
	for k, d := range t.typeN {
		if d != 0 {
			args = append(args, k[0], k[1], d)
		}
	}
	if err := t.execRows(opTypeN, 0, args); err != nil {
		return fmt.Errorf("count types: %w", err)
	}
	args = args[:0]
	for k, d := range t.attrN {
		if d != [2]int64{} {
			args = append(args, k[0], k[1], d[0], d[1])
		}
	}
	if err := t.execRows(opAttrN, 0, args); err != nil {
		return fmt.Errorf("count attributes: %w", err)
	}
	args = args[:0]
	for k, d := range t.taN {
		if d != 0 {
			args = append(args, k.tid, k.typ, k.name, string(k.kind), d)
		}
	}
	if err := t.execRows(opTAN, 0, args); err != nil {
		return fmt.Errorf("count type attributes: %w", err)
	}
	return nil
}

// parallelMin is the least number of entities worth encoding on several
// goroutines.
const parallelMin = 64

// encodeFinal computes the index rows (final.rows) and the document of the
// final state of every entity touched, on all processors for large groups.
// Both are pure functions of the entity.
func encodeFinal(touches []*touch) ([][]byte, error) {
	docs := make([][]byte, len(touches))
	errs := make([]error, len(touches))
	work := func(from, step int) {
		for i := from; i < len(touches); i += step {
			fin := touches[i].final
			if fin.ent == nil {
				continue
			}
			errs[i] = func() (err error) {
				defer func() {
					if p := recover(); p != nil {
						err = fmt.Errorf("panicked: %v", p)
					}
				}()
				fin.rows = computeIndex(fin.ent)
				docs[i], err = encodeEntity(fin.ent)
				return err
			}()
		}
	}
	n := min(runtime.GOMAXPROCS(0), len(touches)/parallelMin)
	if n <= 1 {
		work(0, 1)
	} else {
		var wg sync.WaitGroup
		for g := range n {
			wg.Go(func() { work(g, n) })
		}
		wg.Wait()
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("encode entity %s: %w", touches[i].id, err)
		}
	}
	return docs, nil
}
