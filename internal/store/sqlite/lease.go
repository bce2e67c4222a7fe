package sqlite

import (
	"context"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

var _ store.Leaser = (*Store)(nil)

// lease is one granted lease.
type lease struct {
	holder  string
	expires time.Time
}

// Lease implements store.Leaser. One process owns a store file (flock), so
// leases live in memory: they order the holders within this process.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := s.checkOpen(); err != nil {
		return false, err
	}
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	now := time.Now()
	if l, ok := s.leases[name]; ok && l.holder != holder && now.Before(l.expires) {
		return false, nil
	}
	if s.leases == nil {
		s.leases = map[string]lease{}
	}
	s.leases[name] = lease{holder, now.Add(ttl)}
	return true, nil
}

// ReleaseLease implements store.Leaser.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if l, ok := s.leases[name]; ok && l.holder == holder {
		delete(s.leases, name)
	}
	return nil
}
