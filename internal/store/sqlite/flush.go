package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zenne-city/zenne/internal/store/codec"
	"github.com/zenne-city/zenne/internal/store/memindex"
)

// A group transaction applies every op in memory and records, per entity
// touched, its state at the start of the group and its final state. flush
// turns the net difference into multi-row statements, one table at a time,
// so a group of N ops costs a few statements per table instead of about ten
// single-row statements per op.

// maxChunkRows is the most rows one multi-row statement carries (a power of
// two, well under SQLite's variable limit for the widest table, entities).
const maxChunkRows = 256

// multiKey identifies a multi-row statement of the writer: a table operation
// and its number of rows.
type multiKey struct {
	op multiOp
	n  int
}

type multiOp int

const (
	opEntIns multiOp = iota
	opEntUpd
	opEntDel
	opTypeN
	opAttrN
	opTAN
	opHead
	numOps
)

// multiSQL is each operation's statement as head + n tuples joined by ',' +
// tail.
var multiSQL = [numOps]struct {
	cols              int
	head, tuple, tail string
}{
	opEntIns: {cols: 7, head: `INSERT INTO entities (eid, tid, id, ver, created, modified, doc) VALUES `, tuple: `(?,?,?,?,?,?,?)`},
	// Measured: UPDATE ... FROM (VALUES ...) costs half as much per row as
	// INSERT ... ON CONFLICT DO UPDATE of existing rows.
	opEntUpd: {cols: 5, head: `UPDATE entities SET ver = v.column2, created = v.column3, modified = v.column4, doc = v.column5 FROM (VALUES `, tuple: `(?,?,?,?,?)`, tail: `) AS v WHERE entities.eid = v.column1`},
	opEntDel: {cols: 1, head: `DELETE FROM entities WHERE eid IN (`, tuple: `?`, tail: `)`},
	opTypeN:  {cols: 3, head: `INSERT INTO type_counts (tid, type, n) VALUES `, tuple: `(?,?,?)`, tail: ` ON CONFLICT (tid, type) DO UPDATE SET n = n + excluded.n`},
	opAttrN:  {cols: 3, head: `INSERT INTO attr_counts (tid, name, n) VALUES `, tuple: `(?,?,?)`, tail: ` ON CONFLICT (tid, name) DO UPDATE SET n = n + excluded.n`},
	opHead:   {cols: 4, head: `INSERT INTO h_head (seq, tid, id, doc) VALUES `, tuple: `(?,?,?,?)`},
	opTAN:    {cols: 5, head: `INSERT INTO type_attrs (tid, type, name, kind, n) VALUES `, tuple: `(?,?,?,?,?)`, tail: ` ON CONFLICT (tid, type, name, kind) DO UPDATE SET n = n + excluded.n`},
}

// multiStmt returns the statement of k, prepared once and kept by the writer.
func (w *writer) multiStmt(ctx context.Context, k multiKey) (*sql.Stmt, error) {
	if st := w.multi[k]; st != nil {
		return st, nil
	}
	m := multiSQL[k.op]
	st, err := w.c.PrepareContext(ctx, multiRowSQL(m.head, m.tuple, m.tail, k.n))
	if err != nil {
		return nil, fmt.Errorf("prepare %d-row statement: %w", k.n, err)
	}
	w.multi[k] = st
	return st, nil
}

// multiRowSQL is head, n tuples joined by ',', and tail.
func multiRowSQL(head, tuple, tail string, n int) string {
	var b strings.Builder
	b.Grow(len(head) + n*(len(tuple)+1) + len(tail))
	b.WriteString(head)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(tuple)
	}
	b.WriteString(tail)
	return b.String()
}

// execRows runs op over the rows in args, the values of each row in column
// order, in chunks of maxChunkRows rows, and a remainder split in powers of
// two so few distinct statements are ever prepared.
func (t *tx) execRows(op multiOp, args []any) error {
	cols := multiSQL[op].cols
	n := len(args) / cols
	for n > 0 {
		c := min(n, maxChunkRows)
		c = 1 << (bits.Len(uint(c)) - 1)
		st, err := t.w.multiStmt(t.ctx, multiKey{op, c})
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
	orig    *entityFacts
	final   *entState
}

// rowBufs are the rows a flush writes, per table operation.
type rowBufs struct {
	ops [numOps][]any
}

func (b *rowBufs) add(op multiOp, vals ...any) { b.ops[op] = append(b.ops[op], vals...) }

// flush writes the net effect of the group's ops (entity rows and counters)
// and what they record in history.
func (t *tx) flush() error {
	b := &t.bufs
	slices.Sort(t.order)
	touches := make([]*touch, len(t.order))
	for i, eid := range t.order {
		touches[i] = t.touched[eid]
	}
	docs, err := encodeFinal(touches, t.w.s.mem)
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
		if err := t.count(tc.tid, tc.orig, fin.facts); err != nil {
			return fmt.Errorf("count %s: %w", tc.id, err)
		}
	}
	// Deletes before inserts: a (tid, id) freed by one entity may be taken
	// by another.
	for _, op := range []multiOp{opEntDel, opEntUpd, opEntIns} {
		if err := t.execRows(op, b.ops[op]); err != nil {
			return fmt.Errorf("write entities: %w", err)
		}
	}
	if err := t.flushHistory(now); err != nil {
		return err
	}
	if err := t.flushChanges(now, touches, docs); err != nil {
		return err
	}
	return t.flushCounters()
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
	if err := t.execRows(opTypeN, args); err != nil {
		return fmt.Errorf("count types: %w", err)
	}
	args = args[:0]
	for k, d := range t.attrN {
		if d != 0 {
			args = append(args, k[0], k[1], d)
		}
	}
	if err := t.execRows(opAttrN, args); err != nil {
		return fmt.Errorf("count attributes: %w", err)
	}
	args = args[:0]
	for k, d := range t.taN {
		if d != 0 {
			args = append(args, k.tid, k.typ, k.name, string(k.kind), d)
		}
	}
	if err := t.execRows(opTAN, args); err != nil {
		return fmt.Errorf("count type attributes: %w", err)
	}
	return nil
}

// parallelMin is the least number of entities worth encoding on several
// goroutines.
const parallelMin = 64

// encodeFinal computes the counted facts (final.facts), the query index record
// (final.rec) and the document of the
// final state of every entity touched, on all processors for large groups.
// Both are pure functions of the entity.
func encodeFinal(touches []*touch, ix *memindex.Index) ([][]byte, error) {
	docs := make([][]byte, len(touches))
	errs := make([]error, len(touches))
	work := func(from, step int) {
		names := ix.Names()
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
				fin.facts = factsOf(fin.ent)
				fin.rec = names.Rec(touches[i].tid, fin.ver, fin.ent)
				docs[i], err = codec.EncodeEntity(fin.ent)
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
