package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Two Store values on one database stand for two zenne processes: they
// share nothing but the database.
func openTwo(t *testing.T) (*Store, *Store) {
	t.Helper()
	u := testDatabase(t)
	var ss [2]*Store
	for i := range ss {
		s, err := Open(context.Background(), u, Options{MaxConns: 6})
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.WaitIndex(context.Background()); err != nil {
			t.Fatalf("WaitIndex %d: %v", i, err)
		}
		ss[i] = s
	}
	return ss[0], ss[1]
}

const nameN = ngsild.DefaultContextNS + "n"

func counter(id string, n float64) *ngsild.Entity {
	return &ngsild.Entity{ID: id, Types: []string{ngsild.DefaultContextNS + "Counter"},
		Attrs: map[string][]*ngsild.Attribute{nameN: {{Kind: ngsild.Property, Value: n}}}}
}

func increment(id string) store.Op {
	return store.Op{ID: id, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			return nil, errors.New("no counter")
		}
		n := cur.Derive()
		n.Attrs[nameN] = []*ngsild.Attribute{{Kind: ngsild.Property, Value: cur.Attrs[nameN][0].Value.(float64) + 1}}
		return n, nil
	}}
}

func create(e *ngsild.Entity) store.Op {
	return store.Op{ID: e.ID, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur != nil {
			return nil, errors.New("exists")
		}
		return e, nil
	}}
}

// TestTwoProcesses: read-modify-write ops of two processes on the same
// entities lose no update, two processes creating one id (or one tenant)
// create it once, and the change log numbers every committed change once,
// in commit order, without gaps.
func TestTwoProcesses(t *testing.T) {
	a, b := openTwo(t)
	ctx := context.Background()
	procs := []*Store{a, b}
	var watched [2][]store.Change
	var wmu sync.Mutex
	for i, s := range procs {
		s.WatchChanges(func(cs []store.Change) {
			wmu.Lock()
			watched[i] = append(watched[i], cs...)
			wmu.Unlock()
		})
	}

	const counters = 5
	for i := range counters {
		if res, err := a.Write(ctx, "", []store.Op{create(counter(fmt.Sprintf("urn:c%d", i), 0))}); err != nil || res[0].Err != nil {
			t.Fatalf("creating counter %d: %v %+v", i, err, res)
		}
	}

	const (
		workers = 8 // per process
		writes  = 30
		newIDs  = 40
		tenants = 6
	)
	var incs [counters]atomic.Int64    // successful increments per counter
	var created [newIDs]atomic.Int64   // successful creations per id
	var tcreated [tenants]atomic.Int64 // successful creations per tenant
	var wg sync.WaitGroup
	for p, s := range procs {
		for w := range workers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(p), uint64(w)))
				for i := range writes {
					// One to three increments per call, sometimes of one
					// counter twice (the second sees the first).
					var ops []store.Op
					var which []int
					for range 1 + rng.IntN(3) {
						c := rng.IntN(counters)
						ops = append(ops, increment(fmt.Sprintf("urn:c%d", c)))
						which = append(which, c)
					}
					// Both processes race to create the same ids and tenants.
					id := (w*writes + i) % newIDs
					ops = append(ops, create(counter(fmt.Sprintf("urn:new%d", id), 0)))
					res, err := s.Write(ctx, "", ops)
					if err != nil {
						t.Errorf("process %d: Write: %v", p, err)
						return
					}
					for j, c := range which {
						if res[j].Err != nil {
							t.Errorf("process %d: increment: %v", p, res[j].Err)
						} else {
							incs[c].Add(1)
						}
					}
					if res[len(ops)-1].Err == nil {
						created[id].Add(1)
					}
					if i%5 == 0 {
						tn := (w + i) % tenants
						res, err := s.Write(ctx, fmt.Sprintf("t%d", tn), []store.Op{create(counter("urn:first", 0))})
						if err != nil {
							t.Errorf("process %d: Write in a new tenant: %v", p, err)
							return
						}
						if res[0].Err == nil {
							tcreated[tn].Add(1)
						}
					}
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// No lost update: both processes read every counter at its total.
	for c := range counters {
		for p, s := range procs {
			e, err := s.Get(ctx, "", fmt.Sprintf("urn:c%d", c))
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Attrs[nameN][0].Value.(float64); got != float64(incs[c].Load()) {
				t.Errorf("process %d reads counter %d = %v, want %d", p, c, got, incs[c].Load())
			}
		}
	}
	for id := range newIDs {
		if n := created[id].Load(); n != 1 {
			t.Errorf("urn:new%d created %d times", id, n)
		}
	}
	for tn := range tenants {
		if n := tcreated[tn].Load(); n != 1 {
			t.Errorf("urn:first of tenant t%d created %d times", tn, n)
		}
	}
	names, err := b.Tenants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != tenants+1 {
		t.Errorf("tenants %q, want the default and %d others", names, tenants)
	}

	// The log: every change once, numbered 1..n without gaps, in commit
	// order (so each counter's values increase with the numbers).
	var log []store.Change
	for after := uint64(0); ; {
		cs, err := b.Changes(ctx, after, 100)
		if err != nil {
			t.Fatalf("Changes(%d): %v", after, err)
		}
		if len(cs) == 0 {
			break
		}
		log = append(log, cs...)
		after = cs[len(cs)-1].Seq
	}
	total := int64(counters)
	for c := range counters {
		total += incs[c].Load()
	}
	total += newIDs + tenants
	if int64(len(log)) != total {
		t.Errorf("%d changes in the log, want %d", len(log), total)
	}
	last := map[string]float64{}
	for i, c := range log {
		if c.Seq != uint64(i+1) {
			t.Fatalf("change %d has number %d: not gapless", i+1, c.Seq)
		}
		k := c.Tenant + "/" + c.ID
		v := c.After.Attrs[nameN][0].Value.(float64)
		if prev, ok := last[k]; ok && v != prev+1 {
			t.Errorf("change %d: %s = %v after %v: not in commit order", c.Seq, k, v, prev)
		}
		last[k] = v
	}
	// Each process's watcher saw its own commits in order; together, the log.
	var seqs []uint64
	for p := range procs {
		for i, c := range watched[p] {
			if i > 0 && c.Seq <= watched[p][i-1].Seq {
				t.Errorf("process %d watched %d after %d", p, c.Seq, watched[p][i-1].Seq)
			}
			seqs = append(seqs, c.Seq)
		}
		if lc := procs[p].LastChange(); lc > uint64(len(log)) || len(watched[p]) > 0 && lc < watched[p][len(watched[p])-1].Seq {
			t.Errorf("process %d: LastChange %d, log has %d", p, lc, len(log))
		}
	}
	slices.Sort(seqs)
	if len(seqs) != len(log) || len(seqs) > 0 && (seqs[0] != 1 || seqs[len(seqs)-1] != uint64(len(log))) || slices.Compact(seqs) == nil {
		t.Errorf("the watchers saw %d changes, the log has %d", len(seqs), len(log))
	}
	if n := len(slices.Compact(seqs)); n != len(log) {
		t.Errorf("the watchers saw %d distinct changes, the log has %d", n, len(log))
	}
}

// TestTwoProcessesLargeWrites: calls of more entities than a transaction
// locks one by one (they lock every write instead) and small calls of two
// processes, on the same entities, lose no update.
func TestTwoProcessesLargeWrites(t *testing.T) {
	a, b := openTwo(t)
	ctx := context.Background()
	const n = maxEntityLocks + 88
	var ops []store.Op
	for i := range n {
		ops = append(ops, create(counter(fmt.Sprintf("urn:c%d", i), 0)))
	}
	if _, err := a.Write(ctx, "", ops); err != nil {
		t.Fatal(err)
	}
	incAll := make([]store.Op, n)
	for i := range n {
		incAll[i] = increment(fmt.Sprintf("urn:c%d", i))
	}
	const large, small = 4, 40 // calls per process and writer
	var incs [n]atomic.Int64
	var wg sync.WaitGroup
	for p, s := range []*Store{a, b} {
		wg.Go(func() {
			for range large {
				res, err := s.Write(ctx, "", incAll)
				if err != nil {
					t.Errorf("process %d: large Write: %v", p, err)
					return
				}
				for i, r := range res {
					if r.Err == nil {
						incs[i].Add(1)
					}
				}
			}
		})
		for w := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(p), uint64(w)))
				for range small {
					i := rng.IntN(n)
					res, err := s.Write(ctx, "", []store.Op{increment(fmt.Sprintf("urn:c%d", i))})
					if err != nil || res[0].Err != nil {
						t.Errorf("process %d: small Write: %v %+v", p, err, res)
						return
					}
					incs[i].Add(1)
				}
			})
		}
	}
	wg.Wait()
	for i := range n {
		e, err := b.Get(ctx, "", fmt.Sprintf("urn:c%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Attrs[nameN][0].Value.(float64); got != float64(incs[i].Load()) {
			t.Errorf("counter %d = %v, want %d", i, got, incs[i].Load())
		}
	}
}
