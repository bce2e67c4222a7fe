package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/zenne-city/zenne/internal/store"
)

// Records (store.Records): small opaque documents by (kind, tenant, id).
// Every write is one statement on the writer connection, between write
// groups (s.do), so it is committed when the call returns and never fights
// the writer for SQLite's write lock; reads use the reader pool. Text
// columns compare with SQLite's BINARY collation: byte order.
//
//	records(kind, tenant, id, doc)  primary key (kind, tenant, id), WITHOUT ROWID

var _ store.Records = (*Store)(nil)

// PutRecord creates or replaces a record.
func (s *Store) PutRecord(ctx context.Context, kind, tenant, id string, doc []byte) error {
	return s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `INSERT INTO records (kind, tenant, id, doc) VALUES (?, ?, ?, ?)
			ON CONFLICT (kind, tenant, id) DO UPDATE SET doc = excluded.doc`, kind, tenant, id, blob(doc))
		if err != nil {
			return fmt.Errorf("put %s record %s: %w", kind, id, err)
		}
		return nil
	})
}

// PutRecords creates or replaces records in one transaction.
func (s *Store) PutRecords(ctx context.Context, recs []store.Record) error {
	if len(recs) == 0 {
		return nil
	}
	return s.do(ctx, func(ctx context.Context, c *sql.Conn) (err error) {
		if _, err := c.ExecContext(ctx, "BEGIN"); err != nil {
			return fmt.Errorf("put records: %w", err)
		}
		defer func() {
			if err != nil {
				c.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			}
		}()
		stmt, err := c.PrepareContext(ctx, `INSERT INTO records (kind, tenant, id, doc) VALUES (?, ?, ?, ?)
			ON CONFLICT (kind, tenant, id) DO UPDATE SET doc = excluded.doc`)
		if err != nil {
			return fmt.Errorf("put records: %w", err)
		}
		defer stmt.Close()
		for _, r := range recs {
			if _, err := stmt.ExecContext(ctx, r.Kind, r.Tenant, r.ID, blob(r.Doc)); err != nil {
				return fmt.Errorf("put %s record %s: %w", r.Kind, r.ID, err)
			}
		}
		if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
			return fmt.Errorf("put records: %w", err)
		}
		return nil
	})
}

// GetRecord returns a record's document or store.ErrNotFound.
func (s *Store) GetRecord(ctx context.Context, kind, tenant, id string) ([]byte, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	var doc []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT doc FROM records WHERE kind = ? AND tenant = ? AND id = ?`, kind, tenant, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get %s record %s: %w", kind, id, err)
	}
	return blob(doc), nil
}

// DeleteRecord deletes a record or returns store.ErrNotFound.
func (s *Store) DeleteRecord(ctx context.Context, kind, tenant, id string) error {
	return s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
		r, err := c.ExecContext(ctx, `DELETE FROM records WHERE kind = ? AND tenant = ? AND id = ?`, kind, tenant, id)
		if err != nil {
			return fmt.Errorf("delete %s record %s: %w", kind, id, err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return fmt.Errorf("delete %s record %s: %w", kind, id, err)
		} else if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}

// ListRecords returns the records of a kind in one tenant, or in every
// tenant when allTenants, by tenant and id.
func (s *Store) ListRecords(ctx context.Context, kind, tenant string, allTenants bool) ([]store.Record, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	var rows *sql.Rows
	var err error
	if allTenants {
		rows, err = s.rdb.QueryContext(ctx, `SELECT tenant, id, doc FROM records WHERE kind = ? ORDER BY tenant, id`, kind)
	} else {
		rows, err = s.rdb.QueryContext(ctx, `SELECT tenant, id, doc FROM records WHERE kind = ? AND tenant = ? ORDER BY id`, kind, tenant)
	}
	if err != nil {
		return nil, fmt.Errorf("list %s records: %w", kind, err)
	}
	defer rows.Close()
	out := []store.Record{}
	for rows.Next() {
		r := store.Record{Kind: kind}
		if err := rows.Scan(&r.Tenant, &r.ID, &r.Doc); err != nil {
			return nil, fmt.Errorf("list %s records: %w", kind, err)
		}
		r.Doc = blob(r.Doc)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s records: %w", kind, err)
	}
	return out, nil
}

// RecordKinds implements store.Exporter: the kinds of the stored records,
// sorted.
func (s *Store) RecordKinds(ctx context.Context) ([]string, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT DISTINCT kind FROM records ORDER BY kind`)
	if err != nil {
		return nil, fmt.Errorf("list record kinds: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("list record kinds: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list record kinds: %w", err)
	}
	return out, nil
}
