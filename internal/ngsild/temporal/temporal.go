// Package temporal is the NGSI-LD temporal model as zenne holds it, with no
// I/O: the temporal query (timerel, timeAt, endTimeAt, timeproperty, lastN),
// ISO 8601 durations, aggregation (aggrMethods over aggrPeriodDuration), and
// the rendering of an entity's temporal evolution in the normalized,
// temporalValues and aggregatedValues representations.
package temporal

import (
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// Rel is a temporal relation (the timerel parameter).
type Rel int

const (
	RelNone    Rel = iota // no time filter
	RelBefore             // instances before At
	RelAfter              // instances after At
	RelBetween            // instances from At to EndAt
)

// Which time of an instance a query filters and orders on (timeproperty).
const (
	ObservedAt = "observedAt" // the default; instances without observedAt use modifiedAt
	CreatedAt  = "createdAt"
	ModifiedAt = "modifiedAt"
)

// Query selects instances of an entity's attributes in time.
type Query struct {
	Rel      Rel
	At       time.Time // timeAt
	EndAt    time.Time // endTimeAt (RelBetween)
	Property string    // ObservedAt, CreatedAt or ModifiedAt; "" means ObservedAt
	LastN    int       // > 0: only the last n instances of each attribute instance series
}

// Instance is one recorded instance of an attribute: the attribute as it was
// written (value, datasetId, observedAt, unitCode, sub-attributes), with
// CreatedAt and ModifiedAt set to when it was recorded, and its instanceId.
type Instance struct {
	ID   string // instanceId, a URI
	Attr *ngsild.Attribute
}

// Entity is the temporal evolution of one entity: for each attribute
// (expanded name), its recorded instances of every datasetId, in ascending
// order of the query's time property.
type Entity struct {
	ID         string
	Types      []string // expanded
	Scopes     []string
	CreatedAt  time.Time // of the entity, when known
	ModifiedAt time.Time
	Attrs      map[string][]Instance
}
