package auth

import (
	"fmt"
	"strings"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// AllTenants in a grant's Tenant grants the role on every tenant, including
// tenants created later: the platform administrators' grant. It is also the
// tenant to check platform-wide operations against (registered @contexts,
// accounts of every tenant): only a grant on AllTenants allows those.
const AllTenants = "*"

// Role is a set of permissions on one tenant (or on AllTenants).
type Role string

// The roles. Their permissions are rolePermissions.
const (
	// RoleAdmin may do everything on its tenant, including managing the
	// tenant's accounts and keys and reading its audit log.
	RoleAdmin Role = "admin"
	// RoleOperator runs the sensor network: devices, alarm rules, alerts.
	RoleOperator Role = "operator"
	// RoleEditor writes entities: of every type, or only of the types its
	// grant lists (Grant.Types).
	RoleEditor Role = "editor"
	// RoleOffice is the Smart City Office: initiatives and KPIs
	// (OfficeTypes).
	RoleOffice Role = "office"
	// RoleSteward keeps the data catalogue (CatalogueTypes, DCAT-AP).
	RoleSteward Role = "steward"
	// RoleViewer reads.
	RoleViewer Role = "viewer"
)

// Roles lists every role, the most powerful first.
func Roles() []Role {
	return []Role{RoleAdmin, RoleOperator, RoleEditor, RoleOffice, RoleSteward, RoleViewer}
}

// Permission is one right on a tenant, or a set of them (bits). Each API
// route checks one: Principal.Can(tenant, p, types).
type Permission uint16

// The permissions, one per kind of route.
const (
	// PermRead: read entities, their history (temporal API), entity
	// types and attributes (discovery).
	PermRead Permission = 1 << iota
	// PermWrite: create, change and delete entities and their history.
	// Limited to some entity types for the office and steward roles and
	// for editors whose grant lists types.
	PermWrite
	// PermSubscribe: create, change and delete subscriptions.
	PermSubscribe
	// PermStream: read the live stream (Server-Sent Events).
	PermStream
	// PermDevices: provision devices and service groups, read their
	// status and dead letters.
	PermDevices
	// PermRules: create, change, delete and back-test alarm rules.
	PermRules
	// PermAlerts: act on alerts (acknowledge, assign, resolve).
	PermAlerts
	// PermAudit: read and export the audit log.
	PermAudit
	// PermAdmin: manage accounts and API keys (grants on the tenant) and
	// the tenant's settings (public read).
	PermAdmin
	// PermContexts: register and delete @contexts. The registry is
	// platform-wide in NGSI-LD: check it on AllTenants.
	PermContexts

	permEnd
	// PermAll is every permission.
	PermAll = permEnd - 1
)

// publicPerms are what anyone may do on a public-read tenant.
const publicPerms = PermRead | PermStream

var permNames = [...]string{"read", "write", "subscribe", "stream", "devices", "rules", "alerts", "audit", "admin", "contexts"}

// String names the permissions of p, joined by '+'.
func (p Permission) String() string {
	if p == 0 {
		return "none"
	}
	var b strings.Builder
	for i, n := range permNames {
		if p&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('+')
			}
			b.WriteString(n)
		}
	}
	if p&^PermAll != 0 {
		if b.Len() > 0 {
			b.WriteByte('+')
		}
		fmt.Fprintf(&b, "%#x", uint16(p&^PermAll))
	}
	return b.String()
}

// rolePermissions is what each role may do on the tenant of its grant.
// Writes of the office and steward roles are further limited to the types
// of roleWriteTypes, and an editor's to its grant's Types when it has any.
var rolePermissions = map[Role]Permission{
	RoleAdmin:    PermAll,
	RoleOperator: PermRead | PermStream | PermSubscribe | PermDevices | PermRules | PermAlerts,
	RoleEditor:   PermRead | PermStream | PermSubscribe | PermWrite,
	RoleOffice:   PermRead | PermStream | PermSubscribe | PermWrite,
	RoleSteward:  PermRead | PermStream | PermSubscribe | PermWrite,
	RoleViewer:   PermRead | PermStream | PermSubscribe,
}

// Entity types (expanded IRIs) of the roles limited to some types.
const (
	// TypeKeyPerformanceIndicator is Smart Data Models'
	// KeyPerformanceIndicator.
	TypeKeyPerformanceIndicator = "https://smartdatamodels.org/dataModel.KeyPerformanceIndicator/KeyPerformanceIndicator"
	// TypeInitiative is an initiative of the Smart City register. Smart
	// Data Models has no such type (neither KeyPerformanceIndicator nor
	// IssueTracking defines one), so this is what the term "Initiative"
	// expands to with the NGSI-LD core @context alone (its @vocab). The
	// office module should keep using this IRI or publish a context that
	// maps "Initiative" to its own, and change it here.
	TypeInitiative = "https://uri.etsi.org/ngsi-ld/default-context/Initiative"

	// DCAT-AP types of Smart Data Models (dataModel.DCAT-AP).
	TypeCatalogue       = "https://smartdatamodels.org/dataModel.DCAT-AP/Catalogue"
	TypeCatalogueRecord = "https://smartdatamodels.org/dataModel.DCAT-AP/CatalogueRecord"
	TypeDataset         = "https://smartdatamodels.org/dataModel.DCAT-AP/Dataset"
	TypeDistribution    = "https://smartdatamodels.org/dataModel.DCAT-AP/Distribution"
	TypeDataService     = "https://smartdatamodels.org/dataModel.DCAT-AP/DataService"
	TypeAgent           = "https://smartdatamodels.org/dataModel.DCAT-AP/Agent"
)

// OfficeTypes are the entity types the office role writes.
func OfficeTypes() []string { return []string{TypeInitiative, TypeKeyPerformanceIndicator} }

// CatalogueTypes are the entity types the steward role writes.
func CatalogueTypes() []string {
	return []string{TypeCatalogue, TypeCatalogueRecord, TypeDataset, TypeDistribution, TypeDataService, TypeAgent}
}

// roleWriteTypes limits the writes of a role to some types; a role that
// writes and is not here writes every type (an editor: unless its grant
// lists types).
var roleWriteTypes = map[Role]typeSet{
	RoleOffice:  newTypeSet(OfficeTypes()),
	RoleSteward: newTypeSet(CatalogueTypes()),
}

// Permissions returns what role r allows (0 for an unknown role).
func (r Role) Permissions() Permission { return rolePermissions[r] }

// Grant gives a role on a tenant (AllTenants: on every tenant).
type Grant struct {
	// Tenant is the tenant's name, "" for the default tenant, or
	// AllTenants.
	Tenant string `json:"tenant"`
	Role   Role   `json:"role"`
	// Types limits an editor's writes to entities of these types
	// (expanded IRIs); empty: every type. Only editors have Types.
	Types []string `json:"types,omitempty"`
}

func (g Grant) String() string {
	t := g.Tenant
	if t == "" {
		t = "(default)"
	}
	if len(g.Types) > 0 {
		return fmt.Sprintf("%s on %s (types %s)", g.Role, t, strings.Join(g.Types, ", "))
	}
	return fmt.Sprintf("%s on %s", g.Role, t)
}

// maxGrants caps the grants of an account or key.
const maxGrants = 256

// ValidateGrants checks grants: known roles, valid tenant names, types only
// for editors and as absolute IRIs.
func ValidateGrants(gs []Grant) error {
	if len(gs) > maxGrants {
		return fmt.Errorf("%w: %d grants, at most %d", ErrInvalid, len(gs), maxGrants)
	}
	for _, g := range gs {
		if _, ok := rolePermissions[g.Role]; !ok {
			return fmt.Errorf("%w: unknown role %q (roles: admin, operator, editor, office, steward, viewer)", ErrInvalid, g.Role)
		}
		if g.Tenant != "" && g.Tenant != AllTenants && !ngsild.ValidTenant(g.Tenant) {
			return fmt.Errorf("%w: invalid tenant name %q", ErrInvalid, g.Tenant)
		}
		if len(g.Types) > 0 && g.Role != RoleEditor {
			return fmt.Errorf("%w: only an editor's grant lists types (%s has %d)", ErrInvalid, g.Role, len(g.Types))
		}
		for _, t := range g.Types {
			if err := ngsild.ValidURI(t); err != nil {
				return fmt.Errorf("%w: entity type %q is not an expanded IRI", ErrInvalid, t)
			}
		}
	}
	return nil
}

// typeSet is a set of entity types; nil stands for every type.
type typeSet map[string]struct{}

func newTypeSet(ts []string) typeSet {
	s := make(typeSet, len(ts))
	for _, t := range ts {
		s[t] = struct{}{}
	}
	return s
}

func (s typeSet) has(t string) bool {
	if s == nil {
		return true
	}
	_, ok := s[t]
	return ok
}

// rule is a grant compiled for Can: its tenant, permissions and, when it
// writes, the types it may write (nil: every type).
type rule struct {
	tenant string
	perms  Permission
	types  typeSet
}

func (r *rule) covers(tenant string) bool {
	return r.tenant == AllTenants || r.tenant == tenant
}

// compile turns grants into rules.
func compile(gs []Grant) []rule {
	out := make([]rule, 0, len(gs))
	for _, g := range gs {
		perms, ok := rolePermissions[g.Role]
		if !ok {
			continue
		}
		r := rule{tenant: g.Tenant, perms: perms}
		if perms&PermWrite != 0 {
			if ts, ok := roleWriteTypes[g.Role]; ok {
				r.types = ts
			} else if len(g.Types) > 0 {
				r.types = newTypeSet(g.Types)
			}
		}
		out = append(out, r)
	}
	return out
}

// allows reports whether rules allow every permission of perm on tenant,
// and, for PermWrite, writing every type of types (none: every type).
// Rights are the union of the rules: each permission, and each type
// written, may come from a different rule.
func allows(rules []rule, tenant string, perm Permission, types []string) bool {
	if perm == 0 || perm&^PermAll != 0 {
		return false
	}
	need := perm &^ PermWrite
	for i := range rules {
		if rules[i].covers(tenant) {
			need &^= rules[i].perms
		}
	}
	if need != 0 {
		return false
	}
	if perm&PermWrite == 0 {
		return true
	}
	if len(types) == 0 {
		for i := range rules {
			r := &rules[i]
			if r.covers(tenant) && r.perms&PermWrite != 0 && r.types == nil {
				return true
			}
		}
		return false
	}
	for _, t := range types {
		ok := false
		for i := range rules {
			r := &rules[i]
			if r.covers(tenant) && r.perms&PermWrite != 0 && r.types.has(t) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// covered reports whether the rights of grants gs are within those of
// owner: every permission of each grant on its tenant, and every type it
// writes. A grant on AllTenants is covered only by grants on AllTenants.
func covered(gs []Grant, owner []rule) error {
	for _, g := range gs {
		for _, r := range compile([]Grant{g}) {
			if p := r.perms &^ PermWrite; p != 0 && !allows(owner, g.Tenant, p, nil) {
				return fmt.Errorf("%w: %s exceeds the owner's rights", ErrNotSubset, g)
			}
			if r.perms&PermWrite == 0 {
				continue
			}
			if r.types == nil {
				if !allows(owner, g.Tenant, PermWrite, nil) {
					return fmt.Errorf("%w: %s writes every type, the owner does not", ErrNotSubset, g)
				}
				continue
			}
			for t := range r.types {
				if !allows(owner, g.Tenant, PermWrite, []string{t}) {
					return fmt.Errorf("%w: %s writes %s, the owner does not", ErrNotSubset, g, t)
				}
			}
		}
	}
	return nil
}

// intersect returns the rules that allow what both a and b allow: a key's
// rights within its owner's current rights.
func intersect(a, b []rule) []rule {
	var out []rule
	for _, x := range a {
		for _, y := range b {
			var tenant string
			switch {
			case x.tenant == y.tenant:
				tenant = x.tenant
			case x.tenant == AllTenants:
				tenant = y.tenant
			case y.tenant == AllTenants:
				tenant = x.tenant
			default:
				continue
			}
			perms := x.perms & y.perms
			if perms == 0 {
				continue
			}
			r := rule{tenant: tenant, perms: perms}
			if perms&PermWrite != 0 {
				switch {
				case x.types == nil:
					r.types = y.types
				case y.types == nil:
					r.types = x.types
				default:
					r.types = typeSet{}
					for t := range x.types {
						if y.types.has(t) {
							r.types[t] = struct{}{}
						}
					}
					if len(r.types) == 0 {
						r.perms &^= PermWrite
						r.types = nil
					}
				}
			}
			if r.perms != 0 {
				out = append(out, r)
			}
		}
	}
	return out
}
