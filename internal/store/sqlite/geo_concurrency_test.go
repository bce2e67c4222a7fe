package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

// TestConcurrentGeoQueriesAfterRestart: many concurrent typed geo-queries
// (more than read connections) on a store just opened, while its query index
// is being built, must all be answered, and the same as before the restart.
func TestConcurrentGeoQueriesAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zenne.db")
	ctx := context.Background()
	opts := Options{ReadConns: 2}
	s, err := Open(ctx, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for i := range 16 {
		types = append(types, fmt.Sprintf("T%d", i))
	}
	var ops []store.Op
	for i := range 800 {
		e := storetest.Ent(fmt.Sprintf("urn:e:%d", i), []string{types[i%len(types)]})
		e.Attrs[ngsild.IRILocation] = []*ngsild.Attribute{storetest.Point(4.35+float64(i%20)*0.001, 50.85+float64(i/20)*0.001)}
		ops = append(ops, storetest.Upsert(e))
	}
	if _, err := s.Write(ctx, "", ops); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, typ := range types {
		res, err := s.Query(ctx, "", nearQuery(t, typ))
		if err != nil {
			t.Fatal(err)
		}
		want[typ] = len(res.Entities)
	}
	s.Close()
	for round := range 5 {
		if s, err = Open(ctx, path, opts); err != nil {
			t.Fatal(err)
		}
		queryAllAtOnce(t, s, types, want, round)
		s.Close()
	}
}

func nearQuery(t *testing.T, typ string) *store.Query {
	tq, err := qlang.ParseTypeQuery(typ, storetest.Expand)
	if err != nil {
		t.Fatal(err)
	}
	gq, err := geo.ParseQuery("near;maxDistance==2000", "Point", "[4.36,50.855]", "", storetest.Expand)
	if err != nil {
		t.Fatal(err)
	}
	return &store.Query{Type: tq, Geo: gq, Limit: 100}
}

func queryAllAtOnce(t *testing.T, s *Store, types []string, want map[string]int, round int) {
	qctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			typ := types[i%len(types)]
			res, err := s.Query(qctx, "", nearQuery(t, typ))
			if err == nil && len(res.Entities) != want[typ] {
				err = fmt.Errorf("type %s: %d entities, want %d", typ, len(res.Entities), want[typ])
			}
			if err != nil {
				err = fmt.Errorf("restart %d: %w", round, err)
			}
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
