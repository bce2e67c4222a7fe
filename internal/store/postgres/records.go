package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/zenne-city/zenne/internal/store"
)

// Records (store.Records): small opaque documents by (kind, tenant, id),
// keyed in byte order (COLLATE "C"). Writes are rare and small: each call
// is one statement on the pool, committed when it returns, and no
// advisory lock is needed (the primary key makes a put an atomic upsert).
//
//	records(kind, tenant, id, doc)  primary key (kind, tenant, id)

var _ store.Records = (*Store)(nil)

// PutRecord creates or replaces a record.
func (s *Store) PutRecord(ctx context.Context, kind, tenant, id string, doc []byte) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO records (kind, tenant, id, doc) VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, tenant, id) DO UPDATE SET doc = excluded.doc`, kind, tenant, id, blob(doc))
	if err != nil {
		return s.wrapClosed(fmt.Errorf("postgres: put %s record %s: %w", kind, id, err))
	}
	return nil
}

// PutRecords creates or replaces records in one statement (one
// transaction).
func (s *Store) PutRecords(ctx context.Context, recs []store.Record) error {
	if len(recs) == 0 {
		return nil
	}
	if err := s.checkOpen(); err != nil {
		return err
	}
	kinds, tenants, ids := make([]string, len(recs)), make([]string, len(recs)), make([]string, len(recs))
	docs := make([][]byte, len(recs))
	for i, r := range recs {
		kinds[i], tenants[i], ids[i], docs[i] = r.Kind, r.Tenant, r.ID, blob(r.Doc)
	}
	// A key given twice would make ON CONFLICT fail: the last one wins, as
	// with PutRecord called in order.
	_, err := s.pool.Exec(ctx, `INSERT INTO records (kind, tenant, id, doc)
		SELECT DISTINCT ON (k, t, i) k, t, i, d FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY AS x(k, t, i, d, n)
		ORDER BY k, t, i, n DESC
		ON CONFLICT (kind, tenant, id) DO UPDATE SET doc = excluded.doc`, kinds, tenants, ids, docs)
	if err != nil {
		return s.wrapClosed(fmt.Errorf("postgres: put %d records: %w", len(recs), err))
	}
	return nil
}

// GetRecord returns a record's document or store.ErrNotFound.
func (s *Store) GetRecord(ctx context.Context, kind, tenant, id string) ([]byte, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT doc FROM records WHERE kind = $1 AND tenant = $2 AND id = $3`, kind, tenant, id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, s.wrapClosed(fmt.Errorf("postgres: get %s record %s: %w", kind, id, err))
	}
	return blob(doc), nil
}

// DeleteRecord deletes a record or returns store.ErrNotFound.
func (s *Store) DeleteRecord(ctx context.Context, kind, tenant, id string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM records WHERE kind = $1 AND tenant = $2 AND id = $3`, kind, tenant, id)
	if err != nil {
		return s.wrapClosed(fmt.Errorf("postgres: delete %s record %s: %w", kind, id, err))
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ListRecords returns the records of a kind in one tenant, or in every
// tenant when allTenants, by tenant and id.
func (s *Store) ListRecords(ctx context.Context, kind, tenant string, allTenants bool) ([]store.Record, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	var rows pgx.Rows
	var err error
	if allTenants {
		rows, err = s.pool.Query(ctx, `SELECT tenant, id, doc FROM records WHERE kind = $1 ORDER BY tenant, id`, kind)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT tenant, id, doc FROM records WHERE kind = $1 AND tenant = $2 ORDER BY id`, kind, tenant)
	}
	if err != nil {
		return nil, s.wrapClosed(fmt.Errorf("postgres: list %s records: %w", kind, err))
	}
	out := []store.Record{}
	r := store.Record{Kind: kind}
	if _, err := pgx.ForEachRow(rows, []any{&r.Tenant, &r.ID, &r.Doc}, func() error {
		r.Doc = blob(r.Doc) // each row scans into a new slice
		out = append(out, r)
		return nil
	}); err != nil {
		return nil, s.wrapClosed(fmt.Errorf("postgres: list %s records: %w", kind, err))
	}
	return out, nil
}

// RecordKinds implements store.Exporter: the kinds of the stored records,
// sorted.
func (s *Store) RecordKinds(ctx context.Context) ([]string, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT kind FROM records ORDER BY kind`)
	if err != nil {
		return nil, s.wrapClosed(fmt.Errorf("postgres: list record kinds: %w", err))
	}
	kinds, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, s.wrapClosed(fmt.Errorf("postgres: list record kinds: %w", err))
	}
	return kinds, nil
}
