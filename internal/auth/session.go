package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

// Console sessions: a browser that logged in (with a password, or through
// an identity provider) holds a session id in a cookie instead of sending
// credentials with every request. The id is 32 random bytes; the store
// keeps only SHA-256 of it, so a copy of the store lets nobody in. A
// session ends after Idle without a request (sliding), Max after it began
// whatever happens, at logout, and when its account is deleted, disabled or
// gets another password. Its rights are always the account's current ones.

// Record kinds of sessions, in tenant "".
const (
	kindSession = "auth.session" // id: hex SHA-256 of the session id; doc: sessionDoc
	// kindSessionSeen holds a session's last request, apart from the
	// session, so that writing it never brings back a session a logout has
	// just deleted (records have no compare-and-swap).
	kindSessionSeen = "auth.sessionseen" // id: as the session's; doc: seenDoc
)

// Login methods recorded with a session.
const (
	MethodPassword = "password"
	MethodOIDC     = "oidc"
)

// Session errors. ErrNoSession is an unknown, ended or expired session
// (the client is then anonymous); ErrCSRF a request that changes something
// with a session cookie but without the session's CSRF token (403).
var (
	ErrNoSession = errors.New("auth: no such session, or it has ended")
	ErrCSRF      = errors.New("auth: missing or wrong CSRF token")
)

// sessionIDLen is the size of a session id, before base64url.
const sessionIDLen = 32

// SessionOptions configure Sessions. The zero value is the production
// setting.
type SessionOptions struct {
	// Idle ends a session after that long without a request (default
	// 30 min); Max after it began, however busy (default 12 h).
	Idle, Max time.Duration
	// Touch: a session's last request is written at most this often
	// (default 1 min), so that a busy console costs one write a minute, not
	// one per request. A session may thus end up to Touch before Idle.
	Touch time.Duration
	// PruneEvery: the sessions that have ended are deleted from the store
	// at most this often (default 10 min), when a session starts.
	PruneEvery time.Duration
}

func (o *SessionOptions) defaults() {
	if o.Idle <= 0 {
		o.Idle = 30 * time.Minute
	}
	if o.Max <= 0 {
		o.Max = 12 * time.Hour
	}
	if o.Touch <= 0 {
		o.Touch = time.Minute
	}
	if o.Touch > o.Idle/2 {
		o.Touch = o.Idle / 2
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = 10 * time.Minute
	}
}

// Session is a console session, as its holder may see it.
type Session struct {
	User string
	// Method is how the user logged in: MethodPassword or MethodOIDC.
	Method  string
	Created time.Time
	// LastSeen is the last request (written at most every
	// SessionOptions.Touch); IdleExpires is when the session ends unless
	// another request comes; Expires when it ends whatever happens.
	LastSeen, IdleExpires, Expires time.Time
	csrf                           []byte
}

// Ends is when the session ends unless another request comes: the
// earlier of IdleExpires and Expires.
func (s *Session) Ends() time.Time {
	if s.IdleExpires.Before(s.Expires) {
		return s.IdleExpires
	}
	return s.Expires
}

// CSRFToken is the token a request that changes something must carry
// (header X-CSRF-Token or form field csrf_token) with the session cookie.
func (s *Session) CSRFToken() string { return base64.RawURLEncoding.EncodeToString(s.csrf) }

// CheckCSRF reports whether tok is the session's CSRF token (in constant
// time).
func (s *Session) CheckCSRF(tok string) bool {
	if len(s.csrf) == 0 || tok == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(tok), []byte(s.CSRFToken())) == 1
}

// sessionDoc is the record of a session.
type sessionDoc struct {
	User        string    `json:"user"`
	Method      string    `json:"method"`
	Created     time.Time `json:"created"`
	LastSeen    time.Time `json:"lastSeen"`
	IdleExpires time.Time `json:"idleExpires"`
	Expires     time.Time `json:"expires"`
	CSRF        []byte    `json:"csrf"`
	// Account is a digest of the account when the session began (its
	// creation time and password hash): a new password, or an account
	// deleted and made again under the same name, ends the session.
	Account []byte `json:"account"`
}

// seenDoc is a session's last request.
type seenDoc struct {
	LastSeen time.Time `json:"lastSeen"`
}

// accountStamp is what a session remembers of its account.
func accountStamp(u *storedUser) []byte {
	h := sha256.New()
	h.Write([]byte(u.Created.UTC().Format(time.RFC3339Nano)))
	h.Write([]byte{0})
	h.Write([]byte(u.Password))
	return h.Sum(nil)[:16]
}

// Sessions starts, looks up and ends console sessions, kept in the
// Service's store. It has no goroutine of its own: sessions that ended are
// pruned when a session starts, at most every PruneEvery.
type Sessions struct {
	s    *Service
	opts SessionOptions

	pruneMu   sync.Mutex
	lastPrune time.Time
}

// NewSessions returns the sessions of the accounts of s.
func NewSessions(s *Service, opts SessionOptions) *Sessions {
	opts.defaults()
	return &Sessions{s: s, opts: opts}
}

// Options are the options in force (defaults applied).
func (m *Sessions) Options() SessionOptions { return m.opts }

// Start begins a session for p, a user who has just proved who they are
// with a password (Service.Login). It returns the session id, the secret
// to give the client (and nobody else: it is not stored), and the session.
func (m *Sessions) Start(ctx context.Context, p *Principal, method string) (string, Session, error) {
	if p.Kind() != UserPrincipal {
		return "", Session{}, fmt.Errorf("%w: a session is for a user who logged in, not %s", ErrInvalid, p.Who())
	}
	_, u, err := m.s.userPrincipal(ctx, p.User())
	if err != nil {
		return "", Session{}, err
	}
	return m.start(ctx, &u, method)
}

// StartExternal begins a session for the account name, whom an identity
// provider (method, e.g. MethodOIDC) vouched for instead of a password:
// the caller must have checked that. The account must exist (ErrNotFound)
// and be enabled (ErrDisabled); it may have no password. A lock-out after
// failed passwords does not stop it: the provider proved who the user is.
func (m *Sessions) StartExternal(ctx context.Context, name, method string) (string, Session, *Principal, error) {
	p, u, err := m.s.userPrincipal(ctx, name)
	if err != nil {
		return "", Session{}, nil, err
	}
	id, sess, err := m.start(ctx, &u, method)
	if err != nil {
		return "", Session{}, nil, err
	}
	return id, sess, p, nil
}

func (m *Sessions) start(ctx context.Context, u *storedUser, method string) (string, Session, error) {
	m.maybePrune(ctx)
	var raw [sessionIDLen]byte
	csrf := make([]byte, 32)
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Session{}, err
	}
	if _, err := rand.Read(csrf); err != nil {
		return "", Session{}, err
	}
	now := m.s.now().UTC()
	d := sessionDoc{User: u.Name, Method: method, Created: now, LastSeen: now,
		IdleExpires: now.Add(m.opts.Idle), Expires: now.Add(m.opts.Max), CSRF: csrf, Account: accountStamp(u)}
	doc, err := json.Marshal(d)
	if err != nil {
		return "", Session{}, err
	}
	if err := m.s.st.PutRecord(ctx, kindSession, "", sessionKey(raw[:]), doc); err != nil {
		return "", Session{}, fmt.Errorf("auth: saving a session of %q: %w", u.Name, err)
	}
	return base64.RawURLEncoding.EncodeToString(raw[:]), d.session(), nil
}

func (d *sessionDoc) session() Session {
	return Session{User: d.User, Method: d.Method, Created: d.Created, LastSeen: d.LastSeen,
		IdleExpires: d.IdleExpires, Expires: d.Expires, csrf: d.CSRF}
}

// sessionKey is the record id of a session: hex SHA-256 of its id.
func sessionKey(raw []byte) string {
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:])
}

// parseSessionID decodes a session id; false if it cannot be one.
func parseSessionID(id string) ([]byte, bool) {
	if len(id) != base64.RawURLEncoding.EncodedLen(sessionIDLen) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(id)
	return raw, err == nil && len(raw) == sessionIDLen
}

// Lookup returns the session id and its user's principal, with the rights
// of the account's current grants. An unknown id, a session that expired
// or ended, and one whose account was deleted, disabled or given another
// password are ErrNoSession (such a session is deleted). A session in use
// has its last request written at most every SessionOptions.Touch.
func (m *Sessions) Lookup(ctx context.Context, id string) (*Principal, Session, error) {
	raw, ok := parseSessionID(id)
	if !ok {
		return nil, Session{}, ErrNoSession
	}
	key := sessionKey(raw)
	var d sessionDoc
	if err := m.s.getJSON(ctx, kindSession, "", key, &d); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Session{}, ErrNoSession
		}
		return nil, Session{}, fmt.Errorf("auth: reading a session: %w", err)
	}
	var seen seenDoc
	if err := m.s.getJSON(ctx, kindSessionSeen, "", key, &seen); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, Session{}, fmt.Errorf("auth: reading a session: %w", err)
	}
	if seen.LastSeen.After(d.LastSeen) {
		d.LastSeen = seen.LastSeen
	}
	d.IdleExpires = d.LastSeen.Add(m.opts.Idle)
	now := m.s.now()
	if !now.Before(d.Expires) || !now.Before(d.IdleExpires) {
		m.end(ctx, key)
		return nil, Session{}, ErrNoSession
	}
	p, err := m.principal(ctx, &d)
	if err != nil {
		if errors.Is(err, ErrNoSession) {
			m.end(ctx, key)
		}
		return nil, Session{}, err
	}
	if now.Sub(d.LastSeen) >= m.opts.Touch {
		d.LastSeen = now.UTC()
		d.IdleExpires = d.LastSeen.Add(m.opts.Idle)
		doc, _ := json.Marshal(seenDoc{LastSeen: d.LastSeen})
		if err := m.s.st.PutRecord(ctx, kindSessionSeen, "", key, doc); err != nil {
			m.s.opts.Log.Warn("auth: saving a session's last request", "user", d.User, "err", err)
		}
	}
	return p, d.session(), nil
}

// principal is the principal of a session's account, or ErrNoSession if
// the account no longer allows the session. The cached accounts answer
// when they agree with the session; otherwise the store decides (the cache
// may be seconds behind a change made on another instance), so that a
// session is never ended on stale information.
func (m *Sessions) principal(ctx context.Context, d *sessionDoc) (*Principal, error) {
	if e := m.s.snap.Load().users[d.User]; e != nil && e.p != nil && subtle.ConstantTimeCompare(accountStamp(&e.u), d.Account) == 1 {
		return e.p, nil
	}
	p, u, err := m.s.userPrincipal(ctx, d.User)
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrDisabled):
		return nil, ErrNoSession
	case err != nil:
		return nil, err
	}
	if subtle.ConstantTimeCompare(accountStamp(&u), d.Account) != 1 {
		return nil, ErrNoSession // another password, or another account of the same name
	}
	return p, nil
}

// userPrincipal is the principal of the enabled account name with its
// current grants, read from the store, for a session: the user proved who
// they are earlier, or through an identity provider, not with a password
// now. ErrNotFound when there is no such account, ErrDisabled when it is
// disabled.
func (s *Service) userPrincipal(ctx context.Context, name string) (*Principal, storedUser, error) {
	u, err := s.getUser(ctx, name)
	if err != nil {
		return nil, u, err
	}
	if u.Disabled {
		return nil, u, ErrDisabled
	}
	return s.principalOf(&u), u, nil
}

// End ends a session (logout). An unknown id is no error.
func (m *Sessions) End(ctx context.Context, id string) error {
	raw, ok := parseSessionID(id)
	if !ok {
		return nil
	}
	return m.end(ctx, sessionKey(raw))
}

func (m *Sessions) end(ctx context.Context, key string) error { return m.s.endSession(ctx, key) }

func (s *Service) endSession(ctx context.Context, key string) error {
	err := s.st.DeleteRecord(ctx, kindSession, "", key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.opts.Log.Warn("auth: deleting a session", "err", err)
		return fmt.Errorf("auth: ending a session: %w", err)
	}
	if err := s.st.DeleteRecord(ctx, kindSessionSeen, "", key); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.opts.Log.Warn("auth: deleting a session's last request", "err", err)
	}
	return nil
}

// EndUser ends every session of the user name and tells how many there
// were. Lookup refuses the sessions of an account deleted, disabled or
// given another password anyway; the Service also ends them itself when
// an account is disabled or deleted, so that enabling it again does not
// revive them.
func (m *Sessions) EndUser(ctx context.Context, name string) (int, error) {
	return m.s.endSessions(ctx, name)
}

func (s *Service) endSessions(ctx context.Context, name string) (int, error) {
	recs, err := s.st.ListRecords(ctx, kindSession, "", false)
	if err != nil {
		return 0, fmt.Errorf("auth: listing sessions: %w", err)
	}
	n := 0
	for _, r := range recs {
		var d sessionDoc
		if json.Unmarshal(r.Doc, &d) == nil && d.User != name {
			continue
		}
		if err := s.endSession(ctx, r.ID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (m *Sessions) lastSeen(ctx context.Context) (map[string]time.Time, error) {
	recs, err := m.s.st.ListRecords(ctx, kindSessionSeen, "", false)
	if err != nil {
		return nil, fmt.Errorf("auth: listing sessions' last requests: %w", err)
	}
	out := make(map[string]time.Time, len(recs))
	for _, r := range recs {
		var d seenDoc
		if json.Unmarshal(r.Doc, &d) == nil {
			out[r.ID] = d.LastSeen
		}
	}
	return out, nil
}

// Prune deletes the sessions that have ended: expired, or whose account
// was deleted, disabled or given another password. It tells how many it
// deleted. Start calls it every SessionOptions.PruneEvery.
func (m *Sessions) Prune(ctx context.Context) (int, error) {
	recs, err := m.s.st.ListRecords(ctx, kindSession, "", false)
	if err != nil {
		return 0, fmt.Errorf("auth: listing sessions: %w", err)
	}
	seen, err := m.lastSeen(ctx)
	if err != nil {
		return 0, err
	}
	users, err := m.s.listUsers(ctx)
	if err != nil {
		return 0, err
	}
	stamps := make(map[string][]byte, len(users))
	for i := range users {
		if !users[i].Disabled {
			stamps[users[i].Name] = accountStamp(&users[i])
		}
	}
	now := m.s.now()
	n := 0
	for _, r := range recs {
		delete(seen, r.ID)
		var d sessionDoc
		if err := json.Unmarshal(r.Doc, &d); err == nil {
			last := d.LastSeen
			if t, ok := seen[r.ID]; ok && t.After(last) {
				last = t
			}
			stamp, ok := stamps[d.User]
			if ok && now.Before(d.Expires) && now.Before(last.Add(m.opts.Idle)) && subtle.ConstantTimeCompare(stamp, d.Account) == 1 {
				continue
			}
		}
		if err := m.end(ctx, r.ID); err != nil {
			return n, err
		}
		n++
	}
	// Last requests of sessions that no longer exist.
	for id := range seen {
		if err := m.s.st.DeleteRecord(ctx, kindSessionSeen, "", id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return n, fmt.Errorf("auth: deleting a session's last request: %w", err)
		}
	}
	return n, nil
}

// maybePrune prunes when the last prune is older than PruneEvery; it
// never fails the caller.
func (m *Sessions) maybePrune(ctx context.Context) {
	now := m.s.now()
	m.pruneMu.Lock()
	if !m.lastPrune.IsZero() && now.Sub(m.lastPrune) < m.opts.PruneEvery {
		m.pruneMu.Unlock()
		return
	}
	m.lastPrune = now
	m.pruneMu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if n, err := m.Prune(ctx); err != nil {
		m.s.opts.Log.Warn("auth: pruning sessions that ended", "err", err)
	} else if n > 0 {
		m.s.opts.Log.Debug("auth: pruned sessions that ended", "sessions", n)
	}
}
