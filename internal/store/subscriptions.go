package store

import (
	"context"
	"time"
)

// Subscriptions stores NGSI-LD subscriptions and their durable notification
// queue. The store treats subscription documents and notification bodies as
// opaque bytes: internal/notify owns their meaning.
type Subscriptions interface {
	// SaveSubscription creates or replaces a subscription (Doc and Status).
	SaveSubscription(ctx context.Context, s SubscriptionRecord) error
	// SaveStatuses replaces the Status of existing subscriptions (the
	// others are ignored).
	SaveStatuses(ctx context.Context, ss []SubscriptionRecord) error
	// DeleteSubscription deletes a subscription and its queued
	// notifications; ErrNotFound if there is none.
	DeleteSubscription(ctx context.Context, tenant, id string) error
	// ListSubscriptions returns every subscription of every tenant.
	ListSubscriptions(ctx context.Context) ([]SubscriptionRecord, error)

	// Enqueue adds notifications to the queue and sets the notifier's
	// cursor in the change log to cursor, in one transaction: after a crash
	// the notifier resumes after cursor and finds what it queued before.
	// It fills each notification's ID (increasing, never reused).
	Enqueue(ctx context.Context, cursor uint64, ns []*QueuedNotification) error
	// NotifierCursor is the cursor last set by Enqueue (0: never).
	NotifierCursor(ctx context.Context) (uint64, error)
	// Queued returns up to max queued notifications of one subscription
	// with ID > after, in ID order.
	Queued(ctx context.Context, tenant, subscription string, after int64, max int) ([]*QueuedNotification, error)
	// QueuedCounts returns how many notifications each subscription with
	// any has queued ("tenant\x00id" -> count).
	QueuedCounts(ctx context.Context) (map[string]int, error)
	// Dequeue removes notifications (delivered or given up).
	Dequeue(ctx context.Context, ids []int64) error
}

// SubscriptionRecord is one stored subscription.
type SubscriptionRecord struct {
	Tenant string
	ID     string
	Doc    []byte // the subscription (notify's encoding)
	Status []byte // its notification status (notify's encoding)
}

// QueuedNotification is one notification waiting for delivery.
type QueuedNotification struct {
	ID           int64
	Tenant       string
	Subscription string
	Created      time.Time
	Body         []byte // what is sent (notify's encoding)
}
