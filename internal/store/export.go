package store

import (
	"context"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Exporter is implemented by stores that can be copied whole (zenne
// migrate): it lists what the query and history contracts cannot reach
// page by page at scale.
type Exporter interface {
	// ExportEntities calls f with every entity of tenant, in creation
	// order, without holding the whole tenant in memory. An error from f
	// stops the export and is returned.
	ExportEntities(ctx context.Context, tenant string, f func(*ngsild.Entity) error) error
	// HistoryEntityIDs returns the id of every entity of tenant that has
	// recorded history, whether it still exists or not, sorted.
	HistoryEntityIDs(ctx context.Context, tenant string) ([]string, error)
}
