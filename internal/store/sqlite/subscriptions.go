package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

// Subscriptions and their notification queue (store.Subscriptions). The
// documents, statuses and notification bodies are opaque bytes. Every write
// is one transaction on the writer connection, between write groups (s.do);
// reads use the reader pool.
//
//	subscriptions(tenant, id, doc, status)
//	n_queue(nid, tenant, sub, created, body)  nid AUTOINCREMENT: increasing, never reused
//	n_cursor('notifier', seq)                 the notifier's cursor in the change log

var _ store.Subscriptions = (*Store)(nil)

// queueChunkRows is the most notifications one INSERT carries (4 variables
// each, well under SQLite's variable limit).
const queueChunkRows = 256

// SaveSubscription creates or replaces a subscription.
func (s *Store) SaveSubscription(ctx context.Context, r store.SubscriptionRecord) error {
	return s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `INSERT INTO subscriptions (tenant, id, doc, status) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant, id) DO UPDATE SET doc = excluded.doc, status = excluded.status`,
			r.Tenant, r.ID, blob(r.Doc), blob(r.Status))
		if err != nil {
			return fmt.Errorf("save subscription %s: %w", r.ID, err)
		}
		return nil
	})
}

// SaveStatuses replaces the status of the existing subscriptions among ss,
// in one transaction; the others are ignored.
func (s *Store) SaveStatuses(ctx context.Context, ss []store.SubscriptionRecord) error {
	if len(ss) == 0 {
		return s.checkOpen()
	}
	return s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
		return inTx(ctx, c, func() error {
			st, err := c.PrepareContext(ctx, `UPDATE subscriptions SET status = ? WHERE tenant = ? AND id = ?`)
			if err != nil {
				return fmt.Errorf("save subscription statuses: %w", err)
			}
			defer st.Close()
			for _, r := range ss {
				if _, err := st.ExecContext(ctx, blob(r.Status), r.Tenant, r.ID); err != nil {
					return fmt.Errorf("save status of subscription %s: %w", r.ID, err)
				}
			}
			return nil
		})
	})
}

// DeleteSubscription deletes a subscription and its queued notifications in
// one transaction; store.ErrNotFound (and nothing deleted) if there is no
// such subscription.
func (s *Store) DeleteSubscription(ctx context.Context, tenant, id string) error {
	return s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
		return inTx(ctx, c, func() error {
			r, err := c.ExecContext(ctx, `DELETE FROM subscriptions WHERE tenant = ? AND id = ?`, tenant, id)
			if err != nil {
				return fmt.Errorf("delete subscription %s: %w", id, err)
			}
			if n, err := r.RowsAffected(); err != nil {
				return fmt.Errorf("delete subscription %s: %w", id, err)
			} else if n == 0 {
				return store.ErrNotFound
			}
			if _, err := c.ExecContext(ctx, `DELETE FROM n_queue WHERE tenant = ? AND sub = ?`, tenant, id); err != nil {
				return fmt.Errorf("delete the queue of subscription %s: %w", id, err)
			}
			return nil
		})
	})
}

// ListSubscriptions returns every subscription of every tenant, by tenant
// and id.
func (s *Store) ListSubscriptions(ctx context.Context) ([]store.SubscriptionRecord, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT tenant, id, doc, status FROM subscriptions ORDER BY tenant, id`)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	var out []store.SubscriptionRecord
	for rows.Next() {
		var r store.SubscriptionRecord
		if err := rows.Scan(&r.Tenant, &r.ID, &r.Doc, &r.Status); err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	return out, nil
}

// Enqueue adds ns to the queue and sets the notifier's cursor, in one
// transaction, and fills each notification's ID. A zero Created is set to
// now. Notifications are inserted with multi-row statements; AUTOINCREMENT
// gives the rows of one statement increasing ids in the order of its
// VALUES, so the ids returned, sorted, are those of ns in order.
func (s *Store) Enqueue(ctx context.Context, cursor uint64, ns []*store.QueuedNotification) error {
	if cursor > math.MaxInt64 {
		return fmt.Errorf("enqueue notifications: cursor %d out of range", cursor)
	}
	now := time.Now()
	for _, n := range ns {
		if n.Created.IsZero() {
			n.Created = now
		}
	}
	ids := make([]int64, 0, len(ns))
	err := s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
		return inTx(ctx, c, func() error {
			args := make([]any, 0, 4*min(len(ns), queueChunkRows))
			for rest := ns; len(rest) > 0; {
				chunk := rest[:min(len(rest), queueChunkRows)]
				rest = rest[len(chunk):]
				args = args[:0]
				for _, n := range chunk {
					args = append(args, n.Tenant, n.Subscription, n.Created.UnixNano(), blob(n.Body))
				}
				first := len(ids)
				rows, err := c.QueryContext(ctx, queueInsertSQL(len(chunk)), args...)
				if err != nil {
					return fmt.Errorf("enqueue notifications: %w", err)
				}
				for rows.Next() {
					var id int64
					if err := rows.Scan(&id); err != nil {
						rows.Close()
						return fmt.Errorf("enqueue notifications: %w", err)
					}
					ids = append(ids, id)
				}
				if err := errors.Join(rows.Err(), rows.Close()); err != nil {
					return fmt.Errorf("enqueue notifications: %w", err)
				}
				if len(ids)-first != len(chunk) {
					return fmt.Errorf("enqueue notifications: %d ids for %d rows", len(ids)-first, len(chunk))
				}
				slices.Sort(ids[first:])
			}
			if _, err := c.ExecContext(ctx, `INSERT INTO n_cursor (k, seq) VALUES ('notifier', ?)
				ON CONFLICT (k) DO UPDATE SET seq = excluded.seq`, int64(cursor)); err != nil {
				return fmt.Errorf("set the notifier cursor: %w", err)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for i, n := range ns {
		n.ID = ids[i]
	}
	return nil
}

// queueInsertSQL is the INSERT of n notifications.
func queueInsertSQL(n int) string {
	return multiRowSQL(`INSERT INTO n_queue (tenant, sub, created, body) VALUES `, `(?,?,?,?)`, ` RETURNING nid`, n)
}

// NotifierCursor returns the cursor last set by Enqueue, 0 if none.
func (s *Store) NotifierCursor(ctx context.Context) (uint64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	var seq int64
	err := s.rdb.QueryRowContext(ctx, `SELECT seq FROM n_cursor WHERE k = 'notifier'`).Scan(&seq)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read the notifier cursor: %w", err)
	}
	return uint64(seq), nil
}

// Queued returns up to maxN queued notifications of one subscription with
// ID > after, in ID order (maxN <= 0: all of them).
func (s *Store) Queued(ctx context.Context, tenant, subscription string, after int64, maxN int) ([]*store.QueuedNotification, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	limit := int64(maxN)
	if maxN <= 0 {
		limit = -1 // no limit
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT nid, created, body FROM n_queue
		WHERE tenant = ? AND sub = ? AND nid > ? ORDER BY nid LIMIT ?`, tenant, subscription, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read the queue of subscription %s: %w", subscription, err)
	}
	defer rows.Close()
	var out []*store.QueuedNotification
	for rows.Next() {
		n := &store.QueuedNotification{Tenant: tenant, Subscription: subscription}
		var created int64
		if err := rows.Scan(&n.ID, &created, &n.Body); err != nil {
			return nil, fmt.Errorf("read the queue of subscription %s: %w", subscription, err)
		}
		n.Created = time.Unix(0, created)
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the queue of subscription %s: %w", subscription, err)
	}
	return out, nil
}

// QueuedCounts returns how many notifications each subscription with any
// has queued, by tenant+"\x00"+id.
func (s *Store) QueuedCounts(ctx context.Context) (map[string]int, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT tenant, sub, COUNT(*) FROM n_queue GROUP BY tenant, sub`)
	if err != nil {
		return nil, fmt.Errorf("count queued notifications: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var tenant, sub string
		var n int
		if err := rows.Scan(&tenant, &sub, &n); err != nil {
			return nil, fmt.Errorf("count queued notifications: %w", err)
		}
		out[tenant+"\x00"+sub] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count queued notifications: %w", err)
	}
	return out, nil
}

// Dequeue removes notifications by id, in one transaction; unknown ids are
// ignored.
func (s *Store) Dequeue(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return s.checkOpen()
	}
	js, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("dequeue notifications: %w", err)
	}
	return s.do(ctx, func(ctx context.Context, c *sql.Conn) error {
		if _, err := c.ExecContext(ctx, `DELETE FROM n_queue WHERE nid IN (SELECT value FROM json_each(?))`, string(js)); err != nil {
			return fmt.Errorf("dequeue notifications: %w", err)
		}
		return nil
	})
}

// blob is b, never nil: the columns are NOT NULL and a nil slice binds as
// NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
