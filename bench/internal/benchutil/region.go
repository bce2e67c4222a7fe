package benchutil

import "math/rand/v2"

// The Brussels region's bounding box, over which the benchmarks' data sets
// spread their entities.
const (
	MinLon, MaxLon = 4.24, 4.48
	MinLat, MaxLat = 50.76, 50.91
)

// RandomPoint is a point drawn uniformly from the region's box.
func RandomPoint(r *rand.Rand) (lon, lat float64) {
	return MinLon + r.Float64()*(MaxLon-MinLon), MinLat + r.Float64()*(MaxLat-MinLat)
}
