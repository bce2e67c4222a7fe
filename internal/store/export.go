package store

import (
	"context"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Exporter is implemented by stores that can be copied whole (zenne
// migrate): it lists what the query, history and records contracts cannot
// reach (page by page at scale, or without knowing the names first).
type Exporter interface {
	// ExportEntities calls f with every entity of tenant, in creation
	// order, without holding the whole tenant in memory. An error from f
	// stops the export and is returned.
	ExportEntities(ctx context.Context, tenant string, f func(*ngsild.Entity) error) error
	// HistoryEntityIDs returns the id of every entity of tenant that has
	// recorded history, whether it still exists or not, sorted.
	HistoryEntityIDs(ctx context.Context, tenant string) ([]string, error)
	// RecordKinds returns the kind of every stored record (Records), each
	// once, sorted: ListRecords then reads each kind whole.
	RecordKinds(ctx context.Context) ([]string, error)
}
