package auth

// PrincipalKind tells how a request was authenticated.
type PrincipalKind uint8

const (
	// Anonymous: no credentials. An anonymous principal may read public
	// tenants and nothing else.
	Anonymous PrincipalKind = iota
	// UserPrincipal: a user name and password (a login, or HTTP Basic).
	UserPrincipal
	// KeyPrincipal: an API key.
	KeyPrincipal
)

// Principal is who makes a request, with the rights checked by Can. It is
// immutable, and the Principal of an API key is shared by all the
// requests that present the key: build none by hand (the zero Principal and
// nil may do nothing).
type Principal struct {
	kind  PrincipalKind
	user  string // the user, or the key's owner
	keyID string
	rules []rule
	// public holds the public-read tenants when the principal was made.
	public map[string]bool
	grants []Grant
}

// Kind tells whether p is anonymous, a user or a key.
func (p *Principal) Kind() PrincipalKind {
	if p == nil {
		return Anonymous
	}
	return p.kind
}

// User is the user's name, the key's owner for a key, "" when anonymous.
func (p *Principal) User() string {
	if p == nil {
		return ""
	}
	return p.user
}

// KeyID is the id of the API key (the public part, not its secret), "" for
// a user or anonymous.
func (p *Principal) KeyID() string {
	if p == nil {
		return ""
	}
	return p.keyID
}

// Who names the principal for logs and the audit log: the user's name,
// "key <id> of <owner>", or "anonymous".
func (p *Principal) Who() string {
	switch p.Kind() {
	case UserPrincipal:
		return p.user
	case KeyPrincipal:
		return "key " + p.keyID + " of " + p.user
	}
	return "anonymous"
}

// Grants are the grants the user or key holds (a key's as created: its
// effective rights are within its owner's current ones). The slice is
// shared: do not change it.
func (p *Principal) Grants() []Grant {
	if p == nil {
		return nil
	}
	return p.grants
}

// Can reports whether p may do perm (one permission, or several: all of
// them) on tenant ("" is the default tenant; AllTenants for platform-wide
// operations, which only grants on AllTenants allow).
//
// For PermWrite, types are the entity types (expanded IRIs) the write
// touches: all of them must be allowed, so an editor limited to some types
// may not change an entity that also has another type. No types asks for
// the right to write entities of any type, which type-limited grants do not
// give: a route that writes must find out the types it touches. Other
// permissions ignore types.
//
// Anyone, anonymous included, may read and stream (PermRead, PermStream) a
// public-read tenant.
func (p *Principal) Can(tenant string, perm Permission, types []string) bool {
	if p == nil {
		return false
	}
	if perm != 0 && perm&^publicPerms == 0 && tenant != AllTenants && p.public[tenant] {
		return true
	}
	return allows(p.rules, tenant, perm, types)
}

// CanGrant reports whether p may give grants gs to an account or key: it
// needs PermAdmin on the tenant of every grant (on AllTenants for a grant on
// AllTenants). A key's grants must also be within its owner's (CreateKey
// checks that).
func (p *Principal) CanGrant(gs []Grant) bool {
	for _, g := range gs {
		if !p.Can(g.Tenant, PermAdmin, nil) {
			return false
		}
	}
	return true
}

// MayWrite reports whether p may write some entities on tenant: of every
// type, or only of the types a grant lists. A route that writes admits such
// a principal and checks the types it touches with Can (core.WithTypeCheck).
func (p *Principal) MayWrite(tenant string) bool {
	if p == nil {
		return false
	}
	for i := range p.rules {
		if r := &p.rules[i]; r.covers(tenant) && r.perms&PermWrite != 0 {
			return true
		}
	}
	return false
}
