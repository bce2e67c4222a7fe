package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Types describes the entity types of a tenant from the counters kept on
// write, sorted by type.
func (s *Store) Types(ctx context.Context, tenant string) ([]store.TypeInfo, error) {
	counts, tas, err := s.counters(ctx, tenant, `SELECT type, n FROM type_counts WHERE tid = $1 AND n > 0`)
	if err != nil {
		return nil, err
	}
	return store.TypeInfos(counts, tas), nil
}

// Attributes describes the attributes of a tenant, sorted by name.
func (s *Store) Attributes(ctx context.Context, tenant string) ([]store.AttributeInfo, error) {
	counts, tas, err := s.counters(ctx, tenant, `SELECT name, n FROM attr_counts WHERE tid = $1 AND n > 0`)
	if err != nil {
		return nil, err
	}
	return store.AttributeInfos(counts, tas), nil
}

// counters reads, in one round trip, a tenant's counts (countSQL: name and
// count by tid $1) and its (type, attribute, kind) rows.
func (s *Store) counters(ctx context.Context, tenant, countSQL string) (map[string]int, []store.TypeAttr, error) {
	if err := s.checkOpen(); err != nil {
		return nil, nil, err
	}
	tid, err := s.tenantID(ctx, s.pool, tenant)
	if err != nil {
		return nil, nil, err
	}
	b := &pgx.Batch{}
	b.Queue(countSQL, tid)
	b.Queue(`SELECT type, name, kind FROM type_attrs WHERE tid = $1 AND n > 0`, tid)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	counts := map[string]int{}
	var tas []store.TypeAttr
	var name string
	var n int
	rows, err := br.Query()
	if err == nil {
		_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error { counts[name] = n; return nil })
	}
	if err == nil {
		rows, err = br.Query()
	}
	var ta store.TypeAttr
	var kind string
	if err == nil {
		_, err = pgx.ForEachRow(rows, []any{&ta.Type, &ta.Name, &kind}, func() error {
			ta.Kind = ngsild.Kind(kind)
			tas = append(tas, ta)
			return nil
		})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: counters: %w", err)
	}
	return counts, tas, nil
}

// PutContext stores (or replaces) an @context. A zero CreatedAt is set to now.
func (s *Store) PutContext(ctx context.Context, c store.ContextRecord) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO contexts (id, kind, body, created) VALUES ($1, $2, $3, $4)
		ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, body = excluded.body, created = excluded.created`,
		c.ID, c.Kind, blob(c.Body), c.CreatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("postgres: put context %s: %w", c.ID, err)
	}
	return nil
}

// GetContext returns a stored @context or store.ErrNotFound.
func (s *Store) GetContext(ctx context.Context, id string) (store.ContextRecord, error) {
	if err := s.checkOpen(); err != nil {
		return store.ContextRecord{}, err
	}
	c := store.ContextRecord{ID: id}
	var created int64
	err := s.pool.QueryRow(ctx, `SELECT kind, body, created FROM contexts WHERE id = $1`, id).Scan(&c.Kind, &c.Body, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ContextRecord{}, store.ErrNotFound
	}
	if err != nil {
		return store.ContextRecord{}, fmt.Errorf("postgres: get context %s: %w", id, err)
	}
	c.CreatedAt = time.Unix(0, created)
	return c, nil
}

// ListContexts returns every stored @context, oldest first.
func (s *Store) ListContexts(ctx context.Context) ([]store.ContextRecord, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT id, kind, body, created FROM contexts ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list contexts: %w", err)
	}
	var out []store.ContextRecord
	var c store.ContextRecord
	var created int64
	if _, err := pgx.ForEachRow(rows, []any{&c.ID, &c.Kind, &c.Body, &created}, func() error {
		c.CreatedAt = time.Unix(0, created)
		out = append(out, c)
		c.Body = nil // the next row scans into a new slice
		return nil
	}); err != nil {
		return nil, fmt.Errorf("postgres: list contexts: %w", err)
	}
	return out, nil
}

// DeleteContext removes a stored @context or returns store.ErrNotFound.
func (s *Store) DeleteContext(ctx context.Context, id string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM contexts WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete context %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// blob is b, never nil: the columns are NOT NULL and a nil slice binds as
// NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
