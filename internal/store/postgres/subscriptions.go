package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/zenne-city/zenne/internal/store"
)

// Subscriptions and their notification queue (store.Subscriptions). The
// documents, statuses and notification bodies are opaque bytes. Every
// change is one statement (data-modifying CTEs where it touches two
// tables), so it is atomic without a transaction round trip.

// SaveSubscription creates or replaces a subscription.
func (s *Store) SaveSubscription(ctx context.Context, r store.SubscriptionRecord) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO subscriptions (tenant, id, doc, status) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant, id) DO UPDATE SET doc = excluded.doc, status = excluded.status`,
		r.Tenant, r.ID, blob(r.Doc), blob(r.Status))
	if err != nil {
		return fmt.Errorf("postgres: save subscription %s: %w", r.ID, err)
	}
	return nil
}

// SaveStatuses replaces the status of the existing subscriptions among ss,
// in one statement; the others are ignored.
func (s *Store) SaveStatuses(ctx context.Context, ss []store.SubscriptionRecord) error {
	if err := s.checkOpen(); err != nil || len(ss) == 0 {
		return err
	}
	tenants, ids, statuses := make([]string, len(ss)), make([]string, len(ss)), make([][]byte, len(ss))
	for i, r := range ss {
		tenants[i], ids[i], statuses[i] = r.Tenant, r.ID, blob(r.Status)
	}
	_, err := s.pool.Exec(ctx, `UPDATE subscriptions AS s SET status = u.status
		FROM unnest($1::text[], $2::text[], $3::bytea[]) AS u(tenant, id, status)
		WHERE s.tenant = u.tenant AND s.id = u.id`, tenants, ids, statuses)
	if err != nil {
		return fmt.Errorf("postgres: save subscription statuses: %w", err)
	}
	return nil
}

// DeleteSubscription deletes a subscription and its queued notifications
// in one statement; store.ErrNotFound (and nothing deleted) if there is no
// such subscription.
func (s *Store) DeleteSubscription(ctx context.Context, tenant, id string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	var n int
	err := s.pool.QueryRow(ctx, `WITH d AS (DELETE FROM subscriptions WHERE tenant = $1 AND id = $2 RETURNING 1),
		q AS (DELETE FROM n_queue WHERE tenant = $1 AND sub = $2 AND EXISTS (SELECT 1 FROM d))
		SELECT count(*) FROM d`, tenant, id).Scan(&n)
	if err != nil {
		return fmt.Errorf("postgres: delete subscription %s: %w", id, err)
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// ListSubscriptions returns every subscription of every tenant, by tenant
// and id.
func (s *Store) ListSubscriptions(ctx context.Context) ([]store.SubscriptionRecord, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT tenant, id, doc, status FROM subscriptions ORDER BY tenant, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list subscriptions: %w", err)
	}
	var out []store.SubscriptionRecord
	var r store.SubscriptionRecord
	if _, err := pgx.ForEachRow(rows, []any{&r.Tenant, &r.ID, &r.Doc, &r.Status}, func() error {
		out = append(out, r)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("postgres: list subscriptions: %w", err)
	}
	return out, nil
}

// Enqueue adds ns to the queue and sets the notifier's cursor in one
// statement, and fills each notification's ID. A zero Created is set to
// now. The identity nid is drawn row by row in array order, so the ids
// returned, sorted, are those of ns in order.
func (s *Store) Enqueue(ctx context.Context, cursor uint64, ns []*store.QueuedNotification) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if cursor > math.MaxInt64 {
		return fmt.Errorf("postgres: enqueue notifications: cursor %d out of range", cursor)
	}
	now := time.Now()
	tenants, subs, created, bodies := make([]string, len(ns)), make([]string, len(ns)), make([]int64, len(ns)), make([][]byte, len(ns))
	for i, n := range ns {
		if n.Created.IsZero() {
			n.Created = now
		}
		tenants[i], subs[i], created[i], bodies[i] = n.Tenant, n.Subscription, n.Created.UnixNano(), blob(n.Body)
	}
	rows, err := s.pool.Query(ctx, `WITH c AS (INSERT INTO n_cursor (k, seq) VALUES ('notifier', $5)
			ON CONFLICT (k) DO UPDATE SET seq = excluded.seq)
		INSERT INTO n_queue (tenant, sub, created, body)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[]) RETURNING nid`,
		tenants, subs, created, bodies, int64(cursor))
	if err != nil {
		return fmt.Errorf("postgres: enqueue notifications: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("postgres: enqueue notifications: %w", err)
	}
	if len(ids) != len(ns) {
		return fmt.Errorf("postgres: enqueue notifications: %d ids for %d rows", len(ids), len(ns))
	}
	slices.Sort(ids)
	for i, n := range ns {
		n.ID = ids[i]
	}
	return nil
}

// NotifierCursor returns the cursor last set by Enqueue, 0 if none.
func (s *Store) NotifierCursor(ctx context.Context) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM n_cursor WHERE k = 'notifier'`).Scan(&seq)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("postgres: read the notifier cursor: %w", err)
	}
	return uint64(seq), nil
}

// Queued returns up to maxN queued notifications of one subscription with
// ID > after, in ID order (maxN <= 0: all of them).
func (s *Store) Queued(ctx context.Context, tenant, subscription string, after int64, maxN int) ([]*store.QueuedNotification, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	var limit *int // NULL: LIMIT ALL
	if maxN > 0 {
		limit = &maxN
	}
	rows, err := s.pool.Query(ctx, `SELECT nid, created, body FROM n_queue
		WHERE tenant = $1 AND sub = $2 AND nid > $3 ORDER BY nid LIMIT $4`, tenant, subscription, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: read the queue of subscription %s: %w", subscription, err)
	}
	var out []*store.QueuedNotification
	var id, created int64
	var body []byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &created, &body}, func() error {
		out = append(out, &store.QueuedNotification{ID: id, Tenant: tenant, Subscription: subscription,
			Created: time.Unix(0, created), Body: body})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("postgres: read the queue of subscription %s: %w", subscription, err)
	}
	return out, nil
}

// QueuedCounts returns how many notifications each subscription with any
// has queued, by tenant+"\x00"+id.
func (s *Store) QueuedCounts(ctx context.Context) (map[string]int, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT tenant, sub, count(*) FROM n_queue GROUP BY tenant, sub`)
	if err != nil {
		return nil, fmt.Errorf("postgres: count queued notifications: %w", err)
	}
	out := map[string]int{}
	var tenant, sub string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&tenant, &sub, &n}, func() error {
		out[tenant+"\x00"+sub] = n
		return nil
	}); err != nil {
		return nil, fmt.Errorf("postgres: count queued notifications: %w", err)
	}
	return out, nil
}

// Dequeue removes notifications by id; unknown ids are ignored.
func (s *Store) Dequeue(ctx context.Context, ids []int64) error {
	if err := s.checkOpen(); err != nil || len(ids) == 0 {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM n_queue WHERE nid = ANY($1::bigint[])`, ids); err != nil {
		return fmt.Errorf("postgres: dequeue notifications: %w", err)
	}
	return nil
}
