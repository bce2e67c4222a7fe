package sqlite

import (
	"sync"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// cached is a decoded entity version. ent is never modified once cached:
// every write stores a fresh value (see writer.go).
type cached struct {
	ver   int64
	ent   *ngsild.Entity
	facts *entityFacts // nil until needed by the writer
}

const cacheShards = 32

// entityCache is a bounded map eid -> decoded entity, guarded per shard. Its
// entries are validated by version (entities.ver is unique per write), so a
// reader may add what it decoded without risk of serving stale data.
// Eviction is random (Go's map iteration order), which is cheap and good
// enough for a working-set cache.
type entityCache struct {
	perShard int
	shards   [cacheShards]struct {
		mu sync.Mutex
		m  map[int64]*cached
	}
}

func newEntityCache(size int) *entityCache {
	c := &entityCache{perShard: size / cacheShards}
	if size > 0 && c.perShard == 0 {
		c.perShard = 1
	}
	for i := range c.shards {
		c.shards[i].m = make(map[int64]*cached)
	}
	return c
}

func (c *entityCache) get(eid, ver int64) *cached {
	if c.perShard == 0 {
		return nil
	}
	sh := &c.shards[uint64(eid)%cacheShards]
	sh.mu.Lock()
	v := sh.m[eid]
	sh.mu.Unlock()
	if v == nil || v.ver != ver {
		return nil
	}
	return v
}

func (c *entityCache) put(eid int64, v *cached) {
	if c.perShard == 0 {
		return
	}
	sh := &c.shards[uint64(eid)%cacheShards]
	sh.mu.Lock()
	if old := sh.m[eid]; old != nil && old.ver > v.ver {
		sh.mu.Unlock()
		return // a reader with an older snapshot must not replace a newer version
	}
	if _, ok := sh.m[eid]; !ok && len(sh.m) >= c.perShard {
		n := len(sh.m)/8 + 1
		for k := range sh.m {
			delete(sh.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
	sh.m[eid] = v
	sh.mu.Unlock()
}

func (c *entityCache) remove(eid int64) {
	if c.perShard == 0 {
		return
	}
	sh := &c.shards[uint64(eid)%cacheShards]
	sh.mu.Lock()
	delete(sh.m, eid)
	sh.mu.Unlock()
}
