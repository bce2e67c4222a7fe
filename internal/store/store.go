// Package store defines the storage contract every zenne backend implements
// (embedded SQLite, later PostgreSQL) and, in storetest, the conformance suite
// that proves an implementation keeps it.
package store

import (
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
	"github.com/zenne-city/zenne/internal/ngsild/qlang"
)

var (
	// ErrNotFound: no entity (or context) with that id in the tenant.
	ErrNotFound = errors.New("not found")
	// ErrNoTenant: the tenant has never been written to.
	ErrNoTenant = errors.New("nonexistent tenant")
	// ErrClosed: the store is shut down.
	ErrClosed = errors.New("store closed")
	// ErrUnavailable: the store cannot be reached now (its database server
	// is down or unreachable); the request may be tried again later.
	ErrUnavailable = errors.New("store unavailable")
)

// IsUnavailable reports whether err means the store could not be reached:
// ErrUnavailable, a network error anywhere in err's chain (a database
// connection refused, reset or cut), or a database driver's error saying
// the request was not sent and may be tried again (pgx's SafeToRetry: a
// pooled connection the server had closed). Such a write may or may not
// have committed; nothing else about the data is wrong.
func IsUnavailable(err error) bool {
	var ne net.Error
	var retry interface{ SafeToRetry() bool }
	return errors.Is(err, ErrUnavailable) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &retry) && retry.SafeToRetry()
}

// DefaultTenant is the tenant of requests without an NGSILD-Tenant header. It
// always exists.
const DefaultTenant = ""

// Store is everything the broker needs from storage.
type Store interface {
	Entities
	History
	Contexts
	ChangeLog
	Subscriptions
	Records
	// Tenants lists the tenants that exist (the default tenant included).
	Tenants(ctx context.Context) ([]string, error)
	// Ping reports whether the store can serve requests (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Op is one write on one entity. Apply is called inside the store's
// transaction with the entity's current state (nil when it does not exist) and
// returns the next state (nil deletes the entity). Apply must not keep or
// change cur after returning: the store may hand the same value to later calls.
// An error from Apply leaves the entity unchanged and is reported in that op's
// Result; the other ops of the call still apply. Apply may be called more
// than once for one op (a store retries an op alone when a shared group
// transaction fails), so it must be a function of cur only.
//
// Entities a store returns (from Get, Query and in Results) are shared and
// read-only: the store may cache them. Clone before changing one.
//
// Unless History is set, a store records in history every attribute instance
// the op's next state holds that its current state did not hold (the same
// *Attribute value: changed instances are new values, see ngsild.Entity.Derive).
type Op struct {
	ID    string
	Apply func(cur *ngsild.Entity) (*ngsild.Entity, error)
	// History, if not nil, is recorded instead (when Apply succeeds).
	History *HistoryWrite
}

// Result is the outcome of one Op.
type Result struct {
	ID     string
	Before *ngsild.Entity // nil if the entity did not exist
	After  *ngsild.Entity // nil if it does not exist now (deleted, or Apply failed on a missing one)
	Err    error          // Apply's error; nil on success
}

// Entities stores current state and answers queries.
type Entities interface {
	// Write applies ops in order. When it returns nil, every op whose Result has
	// no Err is durable (survives kill -9). A write to a tenant that does not
	// exist creates it if one of its ops stores an entity; otherwise the ops
	// see no entity and nothing is created.
	// Ops of concurrent calls may share a transaction (group commit). If ctx
	// ends first, Write returns ctx.Err() and the ops may or may not apply.
	Write(ctx context.Context, tenant string, ops []Op) ([]Result, error)
	// Get returns the entity or ErrNotFound / ErrNoTenant.
	Get(ctx context.Context, tenant, id string) (*ngsild.Entity, error)
	// Query returns the entities matching q in a stable order (creation order),
	// using indexes to find candidates and q's predicates to decide.
	Query(ctx context.Context, tenant string, q *Query) (*QueryResult, error)
	// Types describes the entity types of a tenant.
	Types(ctx context.Context, tenant string) ([]TypeInfo, error)
	// Attributes describes the attributes of a tenant.
	Attributes(ctx context.Context, tenant string) ([]AttributeInfo, error)
}

// Query selects entities. All fields are in expanded form; zero values do
// not filter.
type Query struct {
	IDs       []string
	IDPattern *regexp.Regexp
	Type      *qlang.TypeQuery  // entity types (with ',' '|' ';' and parentheses)
	Selectors []Selector        // if any: the entity matches at least one of them
	Attrs     []string          // the entity has at least one of these attributes
	Q         *qlang.Query      // the q filter
	ScopeQ    *qlang.ScopeQuery // the scopeQ filter
	Geo       *geo.Query        // the geo-query
	Limit     int               // 0 returns no entities (useful with Count)
	Offset    int
	Count     bool // fill QueryResult.Count with the total number of matches
}

// Selector is one EntitySelector of a Query body: an id, an id pattern and a
// type expression, each optional, all of which an entity must satisfy.
type Selector struct {
	ID        string
	IDPattern *regexp.Regexp
	Type      *qlang.TypeQuery
}

// Match reports whether an entity with that id and those types satisfies s.
func (s *Selector) Match(id string, types []string) bool {
	return (s.ID == "" || s.ID == id) && (s.IDPattern == nil || s.IDPattern.MatchString(id)) &&
		(s.Type == nil || s.Type.Match(types))
}

// MatchSelectors reports whether an entity with that id and those types
// satisfies at least one of q's Selectors (true when there are none).
func (q *Query) MatchSelectors(id string, types []string) bool {
	if len(q.Selectors) == 0 {
		return true
	}
	for i := range q.Selectors {
		if q.Selectors[i].Match(id, types) {
			return true
		}
	}
	return false
}

// Match reports whether e satisfies every filter of q (not Limit/Offset).
// Backends use indexes to find candidates and this to decide, so every backend
// gives exactly the same answers.
func (q *Query) Match(e *ngsild.Entity) bool {
	if len(q.IDs) > 0 {
		found := false
		for _, id := range q.IDs {
			if id == e.ID {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if q.IDPattern != nil && !q.IDPattern.MatchString(e.ID) {
		return false
	}
	if q.Type != nil && !q.Type.Match(e.Types) {
		return false
	}
	if !q.MatchSelectors(e.ID, e.Types) {
		return false
	}
	if len(q.Attrs) > 0 {
		found := false
		for _, a := range q.Attrs {
			if len(e.Attrs[a]) > 0 {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if q.Q != nil && !q.Q.Match(e) {
		return false
	}
	if q.ScopeQ != nil && !q.ScopeQ.Match(e.Scopes) {
		return false
	}
	if q.Geo != nil && !q.Geo.Match(e) {
		return false
	}
	return true
}

// QueryResult is a page of matches.
type QueryResult struct {
	Entities []*ngsild.Entity
	Count    int // total matches ignoring Limit/Offset; -1 unless Query.Count
}

// TypeInfo describes one entity type of a tenant.
type TypeInfo struct {
	Type  string                   // expanded
	Count int                      // entities having the type
	Attrs map[string][]ngsild.Kind // attribute name -> kinds seen on entities of the type
}

// AttributeInfo describes one attribute name of a tenant.
type AttributeInfo struct {
	Name  string        // expanded
	Count int           // entities having it
	Types []string      // entity types having it
	Kinds []ngsild.Kind // attribute kinds seen
}

// Contexts stores @contexts registered through /jsonldContexts (and cached
// copies of remote ones). They are shared by all tenants.
type Contexts interface {
	PutContext(ctx context.Context, c ContextRecord) error
	GetContext(ctx context.Context, id string) (ContextRecord, error) // ErrNotFound
	ListContexts(ctx context.Context) ([]ContextRecord, error)
	DeleteContext(ctx context.Context, id string) error // ErrNotFound
}

// ContextRecord is a stored @context document.
type ContextRecord struct {
	ID        string // the URL it is served at or was fetched from
	Kind      string // "Hosted", "Cached" or "ImplicitlyCreated"
	Body      []byte // the JSON document, {"@context": ...}
	CreatedAt time.Time
}
