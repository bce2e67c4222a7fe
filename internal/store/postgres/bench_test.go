package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

// The benchmarks are the embedded store's (store/sqlite/bench_test.go), to
// compare the two on one machine.

var benchNames = []string{"temperature", "humidity", "pressure", "no2", "pm10", "pm25", "o3", "noise",
	"windSpeed", "windDirection", "battery", "rssi", "status", "name"}

// sensor builds a 15-attribute entity (14 properties and a location).
func sensor(i int, typ string, rng *rand.Rand) *ngsild.Entity {
	e := &ngsild.Entity{
		ID:         fmt.Sprintf("urn:ngsi-ld:%s:%07d", typ, i),
		Types:      []string{storetest.Expand(typ)},
		Attrs:      map[string][]*ngsild.Attribute{},
		CreatedAt:  time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		ModifiedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	obs := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for j, n := range benchNames {
		a := &ngsild.Attribute{Kind: ngsild.Property, Value: float64(rng.IntN(1000)) / 10, ObservedAt: obs, UnitCode: "CEL"}
		if j >= 12 {
			a = &ngsild.Attribute{Kind: ngsild.Property, Value: fmt.Sprintf("value-%d", rng.IntN(10))}
		}
		e.Attrs[storetest.Expand(n)] = []*ngsild.Attribute{a}
	}
	// Brussels region: about 4.24..4.48 E, 50.76..50.92 N.
	e.Attrs[ngsild.IRILocation] = []*ngsild.Attribute{storetest.Point(4.24+rng.Float64()*0.24, 50.76+rng.Float64()*0.16)}
	return e
}

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(context.Background(), testDatabase(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func load(b testing.TB, s *Store, n, types int, seed uint64) {
	b.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	var ops []store.Op
	for i := range n {
		ops = append(ops, storetest.Upsert(sensor(i, fmt.Sprintf("T%d", i%types), rng)))
		if len(ops) == 1000 || i == n-1 {
			if _, err := s.Write(context.Background(), "", ops); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	if _, err := s.pool.Exec(context.Background(), `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkWriteUpdate: 64 concurrent clients, each Write one op that changes
// one attribute of one of 10,000 entities (group commit at work).
func BenchmarkWriteUpdate(b *testing.B) {
	s := openBench(b)
	const n = 10_000
	load(b, s, n, 10, 1)
	temp := storetest.Expand("temperature")
	var seq atomic.Int64
	b.SetParallelism(max(1, 64/max(1, procs())))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(uint64(seq.Add(1)), 9))
		for pb.Next() {
			i := rng.IntN(n)
			id := fmt.Sprintf("urn:ngsi-ld:T%d:%07d", i%10, i)
			v := float64(rng.IntN(1000)) / 10
			res, err := s.Write(context.Background(), "", []store.Op{storetest.Update(id, func(e *ngsild.Entity) {
				a := *e.Attrs[temp][0]
				a.Value = v
				e.Attrs[temp] = []*ngsild.Attribute{&a}
			})})
			if err != nil || res[0].Err != nil {
				b.Errorf("update: %v %v", err, res)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
}

// BenchmarkQueryNear: type + q + georel=near 500 m over 100,000 entities of
// 10 types in the Brussels region, limit 20, from parallel clients.
func BenchmarkQueryNear(b *testing.B) {
	s := openBench(b)
	load(b, s, 100_000, 10, 2)
	for _, tc := range []struct{ name, typ, q string }{
		{"type+near", "T3", ""},
		{"type+q+near", "T3", "temperature>20"},
		{"type+selectiveq+near", "T3", "temperature>90"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tq, _ := qlang.ParseTypeQuery(tc.typ, storetest.Expand)
			var qq *qlang.Query
			if tc.q != "" {
				qq, _ = qlang.ParseQ(tc.q, storetest.Expand)
			}
			var found, seq atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(uint64(seq.Add(1)), 3))
				var my []time.Duration
				for pb.Next() {
					g, err := geo.ParseQuery("near;maxDistance==500", "Point",
						fmt.Sprintf("[%f,%f]", 4.26+rng.Float64()*0.2, 50.78+rng.Float64()*0.12), "", storetest.Expand)
					if err != nil {
						b.Error(err)
						return
					}
					t0 := time.Now()
					r, err := s.Query(context.Background(), "", &store.Query{Type: tq, Q: qq, Geo: g, Limit: 20})
					my = append(my, time.Since(t0))
					if err != nil || r == nil {
						b.Error(err)
						return
					}
					found.Add(int64(len(r.Entities)))
				}
				mu.Lock()
				lat = append(lat, my...)
				mu.Unlock()
			})
			el := time.Since(start)
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(b.N)/el.Seconds(), "queries/s")
			b.ReportMetric(float64(found.Load())/float64(b.N), "results/op")
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
			}
		})
	}
}

// BenchmarkBatchUpsert: Write calls of 1,000 new entities with 8 attributes
// and a Point location each, from one caller and from 4 concurrent callers.
// b.N counts entities.
func BenchmarkBatchUpsert(b *testing.B) {
	for _, callers := range []int{1, 4} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			s := openBench(b)
			const batch = 1000
			ents := make([]*ngsild.Entity, b.N)
			rng := rand.New(rand.NewPCG(5, 7))
			for i := range ents {
				e := sensor(i, fmt.Sprintf("T%d", i%10), rng)
				for _, n := range benchNames[8:] {
					delete(e.Attrs, storetest.Expand(n))
				}
				ents[i] = e
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range callers {
				wg.Go(func() {
					for {
						lo := int(next.Add(batch)) - batch
						if lo >= len(ents) {
							return
						}
						hi := min(lo+batch, len(ents))
						ops := make([]store.Op, 0, hi-lo)
						for _, e := range ents[lo:hi] {
							ops = append(ops, storetest.Upsert(e))
						}
						res, err := s.Write(context.Background(), "", ops)
						if err != nil {
							b.Error(err)
							return
						}
						for _, r := range res {
							if r.Err != nil {
								b.Error(r.Err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entities/s")
		})
	}
}

func procs() int { return runtime.GOMAXPROCS(0) }
