package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// MaxDeadLetters is how many rejected messages a device's list keeps.
const MaxDeadLetters = 100

// maxDeadPayload is how much of a rejected payload is kept.
const maxDeadPayload = 2048

// DeadLetter is a rejected message and why.
type DeadLetter struct {
	At        time.Time `json:"at"`
	Transport string    `json:"transport,omitempty"`
	Status    int       `json:"status"`
	Reason    string    `json:"reason"`
	Payload   string    `json:"payload"` // truncated to 2 KiB
}

// DeviceStatus is what this instance counted for a device.
type DeviceStatus struct {
	LastSeen  time.Time `json:"lastSeen,omitzero"`
	Messages  uint64    `json:"messages"`
	Errors    uint64    `json:"errors"`
	Transport string    `json:"transport,omitempty"`
}

type devState struct {
	lastSeen  atomic.Int64 // unix ns
	messages  atomic.Uint64
	errors    atomic.Uint64
	transport atomic.Pointer[string]
	limiter   *rate.Limiter

	mu        sync.Mutex
	dead      []DeadLetter // not saved yet, oldest first
	dirty     bool         // counters changed since the last save
	savedAt   int64        // lastSeen at the last save
	savedWhen time.Time    // when the Device entity was last written
}

// statusEntityEvery is how often at most a device's Device entity is
// written: a busy fleet's status must not compete with its readings for the
// store (10,000 devices every 5 s made readings wait hundreds of
// milliseconds); the API shows live counters from memory.
const statusEntityEvery = time.Minute

// statusBatch is the most Device entities one status write holds.
const statusBatch = 500

// statusBook holds every device's counters, rate limiter and unsaved dead
// letters.
type statusBook struct {
	opts     Options
	mu       sync.Mutex
	devs     map[devKey]*devState
	unknowns atomic.Uint64
}

func newStatusBook(o Options) *statusBook { return &statusBook{opts: o, devs: map[devKey]*devState{}} }

func (b *statusBook) state(k devKey) *devState {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.devs[k]
	if st == nil {
		st = &devState{limiter: newLimiter(b.opts)}
		b.devs[k] = st
	}
	return st
}

func (b *statusBook) unknown() { b.unknowns.Add(1) }

// seen counts an accepted message.
func (st *devState) seen(now time.Time, transport string) {
	st.lastSeen.Store(now.UnixNano())
	st.messages.Add(1)
	if p := st.transport.Load(); p == nil || *p != transport {
		st.transport.Store(&transport)
	}
}

func (b *statusBook) failed(k devKey) { b.state(k).errors.Add(1) }

func (b *statusBook) deadLetter(k devKey, u *Uplink, rej *Rejection) {
	st := b.state(k)
	st.errors.Add(1)
	p := u.Payload
	if len(p) > maxDeadPayload {
		p = p[:maxDeadPayload]
	}
	st.mu.Lock()
	st.dead = append(st.dead, DeadLetter{At: u.Received, Transport: u.Transport, Status: rej.Status, Reason: rej.Reason, Payload: string(p)})
	if len(st.dead) > MaxDeadLetters {
		st.dead = st.dead[len(st.dead)-MaxDeadLetters:]
	}
	st.dirty = true
	st.mu.Unlock()
}

func (b *statusBook) get(k devKey) DeviceStatus {
	b.mu.Lock()
	st := b.devs[k]
	b.mu.Unlock()
	if st == nil {
		return DeviceStatus{}
	}
	s := DeviceStatus{Messages: st.messages.Load(), Errors: st.errors.Load()}
	if ns := st.lastSeen.Load(); ns != 0 {
		s.LastSeen = time.Unix(0, ns).UTC()
	}
	if p := st.transport.Load(); p != nil {
		s.Transport = *p
	}
	return s
}

// deadLetters merges the saved list with what is not saved yet.
func (b *statusBook) deadLetters(ctx context.Context, rs store.Records, k devKey) ([]DeadLetter, error) {
	saved, err := loadDead(ctx, rs, k)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	st := b.devs[k]
	b.mu.Unlock()
	if st != nil {
		st.mu.Lock()
		saved = append(saved, st.dead...)
		st.mu.Unlock()
	}
	sort.SliceStable(saved, func(i, j int) bool { return saved[i].At.After(saved[j].At) })
	if len(saved) > MaxDeadLetters {
		saved = saved[:MaxDeadLetters]
	}
	return saved, nil
}

func loadDead(ctx context.Context, rs store.Records, k devKey) ([]DeadLetter, error) {
	doc, err := rs.GetRecord(ctx, kindDead, k.tenant, k.id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	if err := json.Unmarshal(doc, &out); err != nil {
		return nil, nil // a list this version cannot read: start again
	}
	return out, nil
}

// save writes the dead letters gathered since the last save and updates
// the Device entities of the devices seen since then.
func (b *statusBook) save(ctx context.Context, rs store.Records, broker *core.Broker) error {
	b.mu.Lock()
	keys := make([]devKey, 0, len(b.devs))
	for k := range b.devs {
		keys = append(keys, k)
	}
	b.mu.Unlock()
	byTenant := map[string][]*ngsild.Entity{}
	var firstErr error
	now := b.opts.Now()
	for _, k := range keys {
		st := b.state(k)
		st.mu.Lock()
		dead := st.dead
		st.dead = nil
		seen := st.lastSeen.Load()
		changed := (seen != st.savedAt || st.dirty) && now.Sub(st.savedWhen) >= statusEntityEvery
		if changed {
			st.savedAt, st.dirty, st.savedWhen = seen, false, now
		}
		st.mu.Unlock()
		if len(dead) > 0 {
			if err := saveDead(ctx, rs, k, dead); err != nil {
				st.mu.Lock()
				st.dead = append(dead, st.dead...) // keep them for the next save
				st.mu.Unlock()
				if firstErr == nil {
					firstErr = err
				}
			}
		}
		if changed && len(k.id) > 0 && !isGroupKey(k.id) {
			byTenant[k.tenant] = append(byTenant[k.tenant], deviceStatusEntity(k.id, b.get(k)))
		}
	}
	for tenant, ents := range byTenant {
		for len(ents) > 0 {
			n := min(len(ents), statusBatch)
			if _, err := broker.BatchUpsert(ctx, tenant, ents[:n], true); err != nil && firstErr == nil {
				firstErr = err
			}
			ents = ents[n:]
		}
	}
	return firstErr
}

func isGroupKey(id string) bool { return len(id) > 6 && id[:6] == "group:" }

func saveDead(ctx context.Context, rs store.Records, k devKey, add []DeadLetter) error {
	old, err := loadDead(ctx, rs, k)
	if err != nil {
		return err
	}
	all := append(old, add...)
	if len(all) > MaxDeadLetters {
		all = all[len(all)-MaxDeadLetters:]
	}
	doc, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return rs.PutRecord(ctx, kindDead, k.tenant, k.id, doc)
}
