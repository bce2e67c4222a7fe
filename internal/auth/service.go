package auth

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/zenne-city/zenne/internal/ratelimit"
	"github.com/zenne-city/zenne/internal/store"
)

// Record kinds (store.Records). Accounts and keys are platform-wide: their
// records are in tenant "" and their grants name tenants.
const (
	kindUser    = "auth.user"    // id: the user's name; doc: storedUser
	kindKey     = "auth.key"     // id: the key id; doc: storedKey
	kindKeyUse  = "auth.keyuse"  // id: the key id; doc: keyUseDoc (apart, so a last-use write never undoes a revocation)
	kindLockout = "auth.lockout" // id: the user's name; doc: lockState (apart, so failures never undo an account change)
	kindTenant  = "auth.tenant"  // tenant: the tenant; id "settings"; doc: tenantDoc
	kindSetup   = "auth.setup"   // id "token"; doc: setupDoc
)

// Options configure a Service. The zero value is the production setting.
type Options struct {
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// Log receives warnings (a reload that failed); nil: none.
	Log *slog.Logger
	// Reload is how often accounts and keys are read again from the store,
	// so that a change made on another instance (a revocation) applies here
	// within that time (default 5 s). Changes made through this Service
	// apply at once.
	Reload time.Duration
	// Password are argon2id's costs for new hashes (default
	// DefaultPasswordParams()). A stored hash with other costs is remade at
	// the next successful login.
	Password PasswordParams
	// MaxFailures failed logins of one user within FailureWindow lock the
	// account for LockFor (defaults 5, 15 min, 15 min).
	MaxFailures   int
	FailureWindow time.Duration
	LockFor       time.Duration
	// LoginRate and LoginBurst limit the password checks per remote address
	// (defaults: one every 6 s, bursts of 10). Requests with credentials
	// recently checked do not count.
	LoginRate  rate.Limit
	LoginBurst int
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Reload <= 0 {
		o.Reload = 5 * time.Second
	}
	if o.Password == (PasswordParams{}) {
		o.Password = DefaultPasswordParams()
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.FailureWindow <= 0 {
		o.FailureWindow = 15 * time.Minute
	}
	if o.LockFor <= 0 {
		o.LockFor = 15 * time.Minute
	}
	if o.LoginRate <= 0 {
		o.LoginRate = rate.Every(6 * time.Second)
	}
	if o.LoginBurst <= 0 {
		o.LoginBurst = 10
	}
}

// Service authenticates requests and manages accounts, API keys and
// tenant settings, kept in the store's records. Accounts and keys are
// cached in memory (reloaded every Options.Reload) so that authenticating a
// key reads no storage.
type Service struct {
	st   store.Records
	opts Options
	now  func() time.Time

	snap   atomic.Pointer[snapshot]
	loadMu sync.Mutex // one reload at a time: reads and installs in order

	addrs  *ratelimit.Buckets
	basic  basicCache
	lockMu sync.Mutex
	locked map[string]time.Time // users this instance saw locked, until when

	failMu    sync.Mutex // counts failed logins one at a time
	dummyOnce sync.Once
	dummy     string // a hash to check unknown users' passwords against

	setupMu sync.Mutex

	ctx    context.Context // of the background work; canceled by Close
	cancel context.CancelFunc
	done   chan struct{}
}

// New loads accounts and keys from st and starts the goroutine that reloads
// them and saves keys' last-use times; Close stops it.
func New(ctx context.Context, st store.Records, opts Options) (*Service, error) {
	opts.defaults()
	if !opts.Password.valid() {
		return nil, fmt.Errorf("auth: argon2id parameters m=%d,t=%d,p=%d out of bounds", opts.Password.Memory, opts.Password.Time, opts.Password.Threads)
	}
	s := &Service{
		st:     st,
		opts:   opts,
		now:    opts.Now,
		addrs:  ratelimit.New(opts.LoginRate, opts.LoginBurst),
		locked: map[string]time.Time{},
		done:   make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if _, err := rand.Read(s.basic.key[:]); err != nil {
		return nil, err
	}
	if err := s.Reload(ctx); err != nil {
		s.cancel()
		return nil, err
	}
	go s.loop()
	return s, nil
}

// Close stops the background work and saves pending last-use times.
func (s *Service) Close() error {
	s.cancel()
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.flushUses(ctx)
}

func (s *Service) loop() {
	defer close(s.done)
	t := time.NewTicker(s.opts.Reload)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
			if err := s.flushUses(ctx); err != nil {
				s.opts.Log.Warn("auth: saving API keys' last use", "err", err)
			}
			if err := s.Reload(ctx); err != nil {
				s.opts.Log.Warn("auth: reloading accounts and keys", "err", err)
			}
			cancel()
		}
	}
}

// snapshot is what authentication reads: immutable once installed.
type snapshot struct {
	loaded time.Time
	users  map[string]*userEntry
	keys   map[string]*keyEntry
	public map[string]bool
	anon   *Principal
}

type userEntry struct {
	u storedUser
	p *Principal // nil when disabled
}

type keyEntry struct {
	k       storedKey
	hash    [32]byte
	expires int64 // unix nanoseconds; 0: never
	revoked bool
	p       *Principal // nil when the owner is gone or disabled
	use     *keyUse
}

// Reload reads accounts, keys and tenant settings from the store. It runs
// by itself every Options.Reload.
func (s *Service) Reload(ctx context.Context) error {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	return s.reloadLocked(ctx)
}

func (s *Service) reloadLocked(ctx context.Context) error {
	started := s.now()
	urecs, err := s.st.ListRecords(ctx, kindUser, "", false)
	if err != nil {
		return fmt.Errorf("auth: reading accounts: %w", err)
	}
	krecs, err := s.st.ListRecords(ctx, kindKey, "", false)
	if err != nil {
		return fmt.Errorf("auth: reading API keys: %w", err)
	}
	uses, err := s.st.ListRecords(ctx, kindKeyUse, "", false)
	if err != nil {
		return fmt.Errorf("auth: reading API keys' last use: %w", err)
	}
	trecs, err := s.st.ListRecords(ctx, kindTenant, "", true)
	if err != nil {
		return fmt.Errorf("auth: reading tenant settings: %w", err)
	}
	old := s.snap.Load()
	n := &snapshot{
		loaded: started,
		users:  make(map[string]*userEntry, len(urecs)),
		keys:   make(map[string]*keyEntry, len(krecs)),
		public: map[string]bool{},
	}
	for _, r := range trecs {
		var d tenantDoc
		if err := json.Unmarshal(r.Doc, &d); err != nil {
			s.opts.Log.Warn("auth: tenant settings do not decode; skipped", "tenant", r.Tenant, "err", err)
			continue
		}
		if d.PublicRead {
			n.public[r.Tenant] = true
		}
	}
	n.anon = &Principal{kind: Anonymous, public: n.public}
	for _, r := range urecs {
		var u storedUser
		if err := json.Unmarshal(r.Doc, &u); err != nil {
			s.opts.Log.Warn("auth: an account does not decode; skipped", "user", r.ID, "err", err)
			continue
		}
		e := &userEntry{u: u}
		if !u.Disabled {
			e.p = newUserPrincipal(&u, n.public)
		}
		n.users[u.Name] = e
	}
	lastUse := make(map[string]time.Time, len(uses))
	for _, r := range uses {
		var d keyUseDoc
		if json.Unmarshal(r.Doc, &d) == nil {
			lastUse[r.ID] = d.LastUsed
		}
	}
	for _, r := range krecs {
		var k storedKey
		if err := json.Unmarshal(r.Doc, &k); err != nil {
			s.opts.Log.Warn("auth: an API key does not decode; skipped", "key", r.ID, "err", err)
			continue
		}
		e, err := s.keyEntry(k, n, old, lastUse[k.ID])
		if err != nil {
			s.opts.Log.Warn("auth: an API key is damaged; skipped", "key", r.ID, "err", err)
			continue
		}
		n.keys[k.ID] = e
	}
	s.snap.Store(n)
	return nil
}

// keyEntry builds the cache entry of a key: its rights are those of its
// grants within its owner's current grants.
func (s *Service) keyEntry(k storedKey, n, old *snapshot, lastUsed time.Time) (*keyEntry, error) {
	e := &keyEntry{k: k, revoked: !k.Revoked.IsZero()}
	if len(k.Hash) != len(e.hash) {
		return nil, errors.New("hash of the wrong size")
	}
	copy(e.hash[:], k.Hash)
	if !k.Expires.IsZero() {
		e.expires = k.Expires.UnixNano()
	}
	if owner := n.users[k.Owner]; owner != nil && owner.p != nil {
		e.p = &Principal{kind: KeyPrincipal, user: k.Owner, keyID: k.ID,
			rules: intersect(compile(k.Grants), owner.p.rules), public: n.public, grants: k.Grants}
	}
	if old != nil {
		if oe := old.keys[k.ID]; oe != nil {
			e.use = oe.use
		}
	}
	if e.use == nil {
		e.use = new(keyUse)
	}
	if !lastUsed.IsZero() {
		for {
			m := e.use.marked.Load()
			if m >= lastUsed.Unix() || e.use.marked.CompareAndSwap(m, lastUsed.Unix()) {
				break
			}
		}
	}
	return e, nil
}

// reloadIfStale reloads when the cache is older than age: on a key this
// instance does not know, which may have been created on another instance.
// Unknown keys cost at most one reload per age, however many are tried.
func (s *Service) reloadIfStale(ctx context.Context, age time.Duration) bool {
	if s.now().Sub(s.snap.Load().loaded) < age {
		return false
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if s.now().Sub(s.snap.Load().loaded) < age {
		return true // another caller reloaded meanwhile
	}
	if err := s.reloadLocked(ctx); err != nil {
		s.opts.Log.Warn("auth: reloading accounts and keys", "err", err)
		return false
	}
	return true
}

// changed applies a change made through this Service at once.
func (s *Service) changed(ctx context.Context) {
	if err := s.Reload(ctx); err != nil {
		s.opts.Log.Warn("auth: reloading accounts and keys after a change", "err", err)
	}
}

// Anonymous returns the principal of a request without credentials.
func (s *Service) Anonymous() *Principal { return s.snap.Load().anon }

// tenantDoc holds a tenant's access settings.
type tenantDoc struct {
	PublicRead bool `json:"publicRead,omitempty"`
}

// SetPublicRead makes a tenant readable by anyone, anonymous included
// (PermRead and PermStream), or not.
func (s *Service) SetPublicRead(ctx context.Context, tenant string, public bool) error {
	if tenant == AllTenants {
		return fmt.Errorf("%w: public read is set per tenant", ErrInvalid)
	}
	doc, _ := json.Marshal(tenantDoc{PublicRead: public})
	if err := s.st.PutRecord(ctx, kindTenant, tenant, "settings", doc); err != nil {
		return fmt.Errorf("auth: saving tenant %q settings: %w", tenant, err)
	}
	s.changed(ctx)
	return nil
}

// PublicRead reports whether anyone may read tenant.
func (s *Service) PublicRead(tenant string) bool { return s.snap.Load().public[tenant] }

// getJSON reads and decodes a record; store.ErrNotFound becomes ErrNotFound.
func (s *Service) getJSON(ctx context.Context, kind, tenant, id string, v any) error {
	doc, err := s.st.GetRecord(ctx, kind, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(doc, v)
}
