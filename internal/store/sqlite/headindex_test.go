package sqlite

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/storetest"
)

// While one goroutine writes an entity and another seals history as fast
// as it can, every read of the entity's history holds each acknowledged
// value exactly once, in order: a record moving from the head into a chunk
// is never missed nor seen twice (see headIndex).
func TestHistoryReadsDuringSealing(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	const id = "urn:ngsi-ld:Counter:c"
	name := storetest.Expand("n")
	set := func(v int) store.Op {
		return store.Op{ID: id, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
			e := &ngsild.Entity{ID: id, Types: []string{storetest.Expand("Counter")}, Attrs: map[string][]*ngsild.Attribute{}}
			if cur != nil {
				e = cur.Derive()
			}
			e.Attrs[name] = []*ngsild.Attribute{{Kind: ngsild.Property, Value: float64(v), ModifiedAt: time.Now()}}
			return e, nil
		}}
	}
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for v := 1; ; v++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Write(ctx, "", []store.Op{set(v)}); err != nil {
				t.Error(err)
				return
			}
			acked.Store(int64(v))
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Seal(ctx, time.Now()); err != nil {
				t.Error(err)
				return
			}
		}
	})
	deadline := time.Now().Add(2 * time.Second)
	reads := 0
	for time.Now().Before(deadline) {
		before := acked.Load()
		if before == 0 {
			continue
		}
		h, err := s.EntityHistory(ctx, "", id, nil, &temporal.Query{})
		if err != nil {
			t.Fatal(err)
		}
		insts := h.Attrs[name]
		for i, in := range insts {
			if in.Attr.Value != float64(i+1) {
				t.Fatalf("read %d: instance %d is %v: a value is missing or twice", reads, i, in.Attr.Value)
			}
		}
		if int64(len(insts)) < before {
			t.Fatalf("read %d: %d instances, but %d writes were acknowledged before it", reads, len(insts), before)
		}
		reads++
	}
	close(stop)
	wg.Wait()
	t.Logf("%d reads, %d writes", reads, acked.Load())
}
