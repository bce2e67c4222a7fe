package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"sync"
)

// headIndex lists, per entity, the seqs of its head records (h_head rows
// not sealed yet). h_head is keyed by seq alone so that every write appends
// at the end of the table (one or two dirty pages per group commit, where a
// key by entity dirtied one page per entity written and cost a quarter of
// the PATCH rate); this index is how a read finds an entity's rows. It holds
// what is committed: the writer adds after commit, sealing and deletes
// remove after theirs. A reader takes an entity's seqs before its read
// transaction starts, so a row sealed in between is found in its chunk.
type headIndex struct {
	mu sync.RWMutex
	m  map[entKey][]int64
}

func newHeadIndex() *headIndex { return &headIndex{m: map[entKey][]int64{}} }

// load fills the index from h_head (at Open).
func (h *headIndex) load(ctx context.Context, c *sql.Conn) error {
	rows, err := c.QueryContext(ctx, `SELECT seq, tid, id FROM h_head ORDER BY seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var k entKey
		if err := rows.Scan(&seq, &k.tid, &k.id); err != nil {
			return err
		}
		h.m[k] = append(h.m[k], seq)
	}
	return rows.Err()
}

// get returns a copy of the seqs of an entity's head records, oldest first.
func (h *headIndex) get(k entKey) []int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return slices.Clone(h.m[k])
}

// headRow is one head record's place.
type headRow struct {
	k   entKey
	seq int64
}

func (h *headIndex) add(rows []headRow) {
	if len(rows) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range rows {
		h.m[r.k] = append(h.m[r.k], r.seq)
	}
}

func (h *headIndex) remove(rows []headRow) {
	if len(rows) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range rows {
		seqs := slices.DeleteFunc(h.m[r.k], func(s int64) bool { return s == r.seq })
		if len(seqs) == 0 {
			delete(h.m, r.k)
		} else {
			h.m[r.k] = seqs
		}
	}
}
