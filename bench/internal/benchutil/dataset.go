package benchutil

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// The core's benchmark data set (zennebench, clusterbench): entities of ten
// types spread uniformly over the Brussels region's bounding box, each with
// a numeric level, a status and a location. Entity i is always the same, so
// scenarios can address entities by number.

// Types are the data set's entity types (terms of the core @context).
var Types = []string{
	"WasteContainer", "Streetlight", "ParkingSpot", "AirQualityObserved", "NoiseLevelObserved",
	"BikeHireDockingStation", "TrafficFlowObserved", "WaterMeter", "Building", "PointOfInterest",
}

var statuses = []string{"ok", "ok", "ok", "warning", "broken"}

func entityType(i int) string { return Types[i%len(Types)] }

// EntityID is the id of entity i.
func EntityID(i int) string { return "urn:ngsi-ld:" + entityType(i) + ":" + strconv.Itoa(i) }

// AppendEntity appends entity i as normalized NGSI-LD JSON (core @context:
// the client sends no Link header, so terms expand to the default vocabulary).
func AppendEntity(b []byte, i int) []byte {
	r := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	lon, lat := RandomPoint(r)
	return fmt.Appendf(b, `{"id":%q,"type":%q,`+
		`"level":{"type":"Property","value":%d},`+
		`"status":{"type":"Property","value":%q},`+
		`"name":{"type":"Property","value":"%s %d"},`+
		`"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[%.6f,%.6f]}}}`,
		EntityID(i), entityType(i), r.IntN(101), statuses[r.IntN(len(statuses))], entityType(i), i, lon, lat)
}

// BatchBody is the JSON array of entities [from, to).
func BatchBody(from, to int) []byte {
	b := make([]byte, 0, (to-from)*300+2)
	b = append(b, '[')
	for i := from; i < to; i++ {
		if i > from {
			b = append(b, ',')
		}
		b = AppendEntity(b, i)
	}
	return append(b, ']')
}

// PatchBody is the body of the PATCH scenarios: one Property.
func PatchBody(v int) []byte {
	return fmt.Appendf(nil, `{"level":{"type":"Property","value":%d}}`, v%101)
}
