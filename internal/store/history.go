package store

import (
	"context"
	"errors"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
)

// History is the temporal evolution of entities. A store records it in the
// same transaction as the current state (see Write): every attribute instance
// an op adds or changes becomes one recorded instance, with its observedAt
// (or, when it has none, its modifiedAt) as its time. Deleting an entity or
// an attribute does not delete its history; only the History methods below do.
type History interface {
	// EntityHistory returns the recorded instances of one entity's attributes
	// (all of them when attrs is empty; expanded names) that q selects, with
	// the entity's types. ErrNotFound when the entity has no history.
	EntityHistory(ctx context.Context, tenant, id string, attrs []string, q *temporal.Query) (*temporal.Entity, error)
	// EntityHistories is EntityHistory for several entities at once (a page
	// of a temporal query); an entity without history is nil.
	EntityHistories(ctx context.Context, tenant string, ids []string, attrs []string, q *temporal.Query) ([]*temporal.Entity, error)
	// AggregateHistory aggregates what EntityHistory would return, as
	// temporal.AggregateEntity does, into periods of d for methods, and
	// returns the entity (without instances) and the series. A store may
	// read rollups instead of instances where the result is the same.
	AggregateHistory(ctx context.Context, tenant, id string, attrs []string, q *temporal.Query, methods []temporal.Method, d temporal.Duration) (*temporal.Entity, []temporal.Series, error)
	// AggregateHistories is AggregateHistory for several entities at once (a
	// page of a temporal query); an entity without history is nil.
	AggregateHistories(ctx context.Context, tenant string, ids []string, attrs []string, q *temporal.Query, methods []temporal.Method, d temporal.Duration) ([]*AggregatedHistory, error)
	// DeleteHistory deletes recorded instances of one entity: all of them
	// (attr ""), those of one attribute (datasetID nil: every datasetId;
	// otherwise the one given, "" being the default instance), or one
	// instance (instanceID not ""). ErrNotFound when nothing matched.
	DeleteHistory(ctx context.Context, tenant, id string, sel HistorySelector) error
	// ReplaceInstance replaces the recorded instance instanceID of attribute
	// attr of entity id with a (keeping its instanceId). ErrNotFound when the
	// instance does not exist.
	ReplaceInstance(ctx context.Context, tenant, id, attr, instanceID string, a *ngsild.Attribute) error
}

// AggregatedHistory is what AggregateHistory returns for one entity.
type AggregatedHistory struct {
	Entity *temporal.Entity // without instances
	Series []temporal.Series
}

// AggregateEach implements AggregateHistories with a store's
// AggregateHistory: the entities are aggregated on their own, spread over
// the processors (a page of 1,000 daily sums over a year reads 365,000 day
// summaries).
func AggregateEach(ctx context.Context, ids []string, aggregate func(ctx context.Context, id string) (*temporal.Entity, []temporal.Series, error)) ([]*AggregatedHistory, error) {
	out := make([]*AggregatedHistory, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, id := range ids {
		g.Go(func() error {
			h, series, err := aggregate(gctx, id)
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				return err
			default:
				out[i] = &AggregatedHistory{Entity: h, Series: series}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// HistorySelector says which recorded instances of an entity DeleteHistory
// deletes.
type HistorySelector struct {
	Attr       string  // expanded; "" = every attribute
	DatasetID  *string // with Attr: only this datasetId ("" = default)
	InstanceID string  // with Attr: only this instance
}

// Recorded is one attribute instance an op records in history as given,
// instead of the instances its state change adds (see Op.History).
type Recorded struct {
	Name string // expanded attribute name
	Attr *ngsild.Attribute
}

// HistoryWrite is what an op records in history in place of its state
// change: the temporal API's provisioning, which back-fills instances with
// their own times. Types are the entity's types, used when the entity has no
// current state.
type HistoryWrite struct {
	Types     []string
	Instances []Recorded
}

// HistoryImporter is implemented by stores that take history in bulk
// (zenne import history): instances go straight into the store's compacted
// form instead of through the write path, and an instance already stored
// with the same time, value and metadata is skipped, so an interrupted
// import can be run again.
type HistoryImporter interface {
	ImportHistory(ctx context.Context, tenant string, recs []ImportRecord) error
}

// ImportRecord is one attribute instance to import.
type ImportRecord struct {
	EntityID string
	Types    []string // expanded; kept for entities the store has no history of yet
	Name     string   // expanded attribute name
	Attr     *ngsild.Attribute
}
