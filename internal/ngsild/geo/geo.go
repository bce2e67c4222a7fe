// Package geo parses NGSI-LD geo-queries (georel, geometry, coordinates,
// geoproperty) and GeoJSON geometries, and decides the geo relations between
// a query geometry and an entity's GeoProperty.
//
// CONTRACT (implemented by the geo work package; signatures are fixed):
//
//	func ParseGeometry(v any) (orb.Geometry, error)          // a decoded GeoJSON geometry object
//	func ParseQuery(georel, geometry, coordinates, geoproperty string, expand func(string) string) (*Query, error)
//	func ParseQueryJSON(v any, expand func(string) string) (*Query, error) // the geoQ member of a Query body
//	type Query struct { Rel Rel; Geometry orb.Geometry; Property string; MaxDistance, MinDistance float64 }
//	func (q *Query) Match(e *ngsild.Entity) bool
//	func (q *Query) Bound() (orb.Bound, bool)   // lon/lat box every match's geometry intersects; false if none (disjoint, minDistance only)
//	func Bound(g orb.Geometry) orb.Bound
//	func ValueGeometry(v any) (orb.Geometry, error)        // a GeoProperty value as Match reads it
package geo
