package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Types describes the entity types of a tenant from the counters kept on
// write, sorted by type.
func (s *Store) Types(ctx context.Context, tenant string) ([]store.TypeInfo, error) {
	counts, tas, err := s.counters(ctx, tenant, `SELECT type, n FROM type_counts WHERE tid = ? AND n > 0`)
	if err != nil {
		return nil, err
	}
	return store.TypeInfos(counts, tas), nil
}

// Attributes describes the attributes of a tenant, sorted by name.
func (s *Store) Attributes(ctx context.Context, tenant string) ([]store.AttributeInfo, error) {
	counts, tas, err := s.counters(ctx, tenant, `SELECT name, n FROM attr_counts WHERE tid = ? AND n > 0`)
	if err != nil {
		return nil, err
	}
	return store.AttributeInfos(counts, tas), nil
}

// counters reads, in one read transaction, a tenant's counts (countSQL:
// name id and count by tid) and its (type, attribute, kind) rows.
func (s *Store) counters(ctx context.Context, tenant, countSQL string) (map[string]int, []store.TypeAttr, error) {
	if err := s.checkOpen(); err != nil {
		return nil, nil, err
	}
	tid, ok := s.tenantID(tenant)
	if !ok {
		return nil, nil, store.ErrNoTenant
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, fmt.Errorf("counters: %w", err)
	}
	defer tx.Rollback()
	counts := map[string]int{}
	if err := s.scanRows(ctx, tx, countSQL, []any{tid}, func(rows *sql.Rows) error {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return err
		}
		counts[s.nameByID(id)] = int(n)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("counters: %w", err)
	}
	var tas []store.TypeAttr
	if err := s.scanRows(ctx, tx, `SELECT type, name, kind FROM type_attrs WHERE tid = ? AND n > 0`, []any{tid}, func(rows *sql.Rows) error {
		var t, a int64
		var k string
		if err := rows.Scan(&t, &a, &k); err != nil {
			return err
		}
		tas = append(tas, store.TypeAttr{Type: s.nameByID(t), Name: s.nameByID(a), Kind: ngsild.Kind(k)})
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("counters: %w", err)
	}
	return counts, tas, nil
}

func (s *Store) nameByID(nid int64) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nameOf[nid]
}

func (s *Store) scanRows(ctx context.Context, tx *sql.Tx, query string, args []any, f func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PutContext stores (or replaces) an @context. A zero CreatedAt is set to now.
func (s *Store) PutContext(ctx context.Context, c store.ContextRecord) error {
	if c.CreatedAt.IsZero() {
		c.CreatedAt = time.Now()
	}
	return s.do(ctx, func(ctx context.Context, conn *sql.Conn) error {
		_, err := conn.ExecContext(ctx, `INSERT INTO contexts (id, kind, body, created) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, body = excluded.body, created = excluded.created`,
			c.ID, c.Kind, c.Body, c.CreatedAt.UnixNano())
		if err != nil {
			return fmt.Errorf("put context %s: %w", c.ID, err)
		}
		return nil
	})
}

// GetContext returns a stored @context or ErrNotFound.
func (s *Store) GetContext(ctx context.Context, id string) (store.ContextRecord, error) {
	if err := s.checkOpen(); err != nil {
		return store.ContextRecord{}, err
	}
	c := store.ContextRecord{ID: id}
	var created int64
	err := s.rdb.QueryRowContext(ctx, `SELECT kind, body, created FROM contexts WHERE id = ?`, id).Scan(&c.Kind, &c.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ContextRecord{}, store.ErrNotFound
	}
	if err != nil {
		return store.ContextRecord{}, fmt.Errorf("get context %s: %w", id, err)
	}
	c.CreatedAt = time.Unix(0, created)
	return c, nil
}

// ListContexts returns every stored @context, oldest first.
func (s *Store) ListContexts(ctx context.Context) ([]store.ContextRecord, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, kind, body, created FROM contexts ORDER BY created, id`)
	if err != nil {
		return nil, fmt.Errorf("list contexts: %w", err)
	}
	defer rows.Close()
	var out []store.ContextRecord
	for rows.Next() {
		var c store.ContextRecord
		var created int64
		if err := rows.Scan(&c.ID, &c.Kind, &c.Body, &created); err != nil {
			return nil, fmt.Errorf("list contexts: %w", err)
		}
		c.CreatedAt = time.Unix(0, created)
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteContext removes a stored @context or returns ErrNotFound.
func (s *Store) DeleteContext(ctx context.Context, id string) error {
	return s.do(ctx, func(ctx context.Context, conn *sql.Conn) error {
		r, err := conn.ExecContext(ctx, `DELETE FROM contexts WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete context %s: %w", id, err)
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}
