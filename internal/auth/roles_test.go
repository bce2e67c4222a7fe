package auth

import (
	"errors"
	"testing"
)

var allPerms = []Permission{PermRead, PermWrite, PermSubscribe, PermStream, PermDevices, PermRules, PermAlerts, PermAudit, PermAdmin, PermContexts}

func TestRolePermissions(t *testing.T) {
	// The table, spelled out once more: a change to rolePermissions must
	// change this test too.
	want := map[Role]string{
		RoleAdmin:    "read+write+subscribe+stream+devices+rules+alerts+audit+admin+contexts",
		RoleOperator: "read+subscribe+stream+devices+rules+alerts",
		RoleEditor:   "read+write+subscribe+stream",
		RoleOffice:   "read+write+subscribe+stream",
		RoleSteward:  "read+write+subscribe+stream",
		RoleViewer:   "read+subscribe+stream",
	}
	if len(rolePermissions) != len(Roles()) || len(want) != len(Roles()) {
		t.Fatalf("%d roles in the table, %d listed, %d expected", len(rolePermissions), len(Roles()), len(want))
	}
	for _, r := range Roles() {
		if got := r.Permissions().String(); got != want[r] {
			t.Errorf("%s: %s, want %s", r, got, want[r])
		}
	}
	var all Permission
	for _, p := range allPerms {
		all |= p
	}
	if all != PermAll {
		t.Errorf("the permissions listed make %s, PermAll is %s", all, PermAll)
	}
	if Role("root").Permissions() != 0 {
		t.Error("an unknown role has permissions")
	}
}

func TestCan(t *testing.T) {
	// Every role on tenant A, every permission, on A and on B.
	for _, role := range Roles() {
		p := &Principal{kind: UserPrincipal, user: "u", rules: compile([]Grant{{Tenant: tenantA, Role: role}})}
		for _, perm := range allPerms {
			types := []string(nil)
			want := rolePermissions[role]&perm != 0
			switch {
			case perm == PermWrite && role == RoleOffice:
				types = []string{TypeKeyPerformanceIndicator}
			case perm == PermWrite && role == RoleSteward:
				types = []string{TypeDataset}
			}
			if perm == PermContexts {
				// Contexts are platform-wide: on the tenant the grant
				// may have the bit, but the route asks AllTenants.
				if p.Can(AllTenants, perm, nil) {
					t.Errorf("%s of %s may manage contexts", role, tenantA)
				}
			}
			if got := p.Can(tenantA, perm, types); got != want {
				t.Errorf("%s on %s: Can(%s) = %v, want %v", role, tenantA, perm, got, want)
			}
			if p.Can(tenantB, perm, types) {
				t.Errorf("%s on %s: Can(%s) on %s", role, tenantA, perm, tenantB)
			}
			if p.Can("", perm, types) {
				t.Errorf("%s on %s: Can(%s) on the default tenant", role, tenantA, perm)
			}
		}
	}

	g := func(tenant string, role Role, types ...string) Grant {
		return Grant{Tenant: tenant, Role: role, Types: types}
	}
	cases := []struct {
		name   string
		grants []Grant
		public []string
		anon   bool
		tenant string
		perm   Permission
		types  []string
		want   bool
	}{
		{"editor writes any type", []Grant{g(tenantA, RoleEditor)}, nil, false, tenantA, PermWrite, []string{typeT1, typeT3}, true},
		{"editor without types asks any type", []Grant{g(tenantA, RoleEditor)}, nil, false, tenantA, PermWrite, nil, true},
		{"limited editor, its type", []Grant{g(tenantA, RoleEditor, typeT1, typeT2)}, nil, false, tenantA, PermWrite, []string{typeT2}, true},
		{"limited editor, both its types", []Grant{g(tenantA, RoleEditor, typeT1, typeT2)}, nil, false, tenantA, PermWrite, []string{typeT1, typeT2}, true},
		{"limited editor, another type", []Grant{g(tenantA, RoleEditor, typeT1)}, nil, false, tenantA, PermWrite, []string{typeT3}, false},
		{"limited editor, an entity of its type and another", []Grant{g(tenantA, RoleEditor, typeT1)}, nil, false, tenantA, PermWrite, []string{typeT1, typeT3}, false},
		{"limited editor, no types named", []Grant{g(tenantA, RoleEditor, typeT1)}, nil, false, tenantA, PermWrite, nil, false},
		{"limited editor reads everything", []Grant{g(tenantA, RoleEditor, typeT1)}, nil, false, tenantA, PermRead, nil, true},
		{"limited editor on A, other tenant", []Grant{g(tenantA, RoleEditor, typeT1)}, nil, false, tenantB, PermWrite, []string{typeT1}, false},
		{"two limited grants make a union", []Grant{g(tenantA, RoleEditor, typeT1), g(tenantA, RoleEditor, typeT3)}, nil, false, tenantA, PermWrite, []string{typeT1, typeT3}, true},
		{"office writes a KPI", []Grant{g(tenantA, RoleOffice)}, nil, false, tenantA, PermWrite, []string{TypeKeyPerformanceIndicator}, true},
		{"office writes an initiative", []Grant{g(tenantA, RoleOffice)}, nil, false, tenantA, PermWrite, []string{TypeInitiative}, true},
		{"office does not write a dataset", []Grant{g(tenantA, RoleOffice)}, nil, false, tenantA, PermWrite, []string{TypeDataset}, false},
		{"office does not write any type", []Grant{g(tenantA, RoleOffice)}, nil, false, tenantA, PermWrite, nil, false},
		{"steward writes a distribution", []Grant{g(tenantA, RoleSteward)}, nil, false, tenantA, PermWrite, []string{TypeDistribution}, true},
		{"steward does not write a KPI", []Grant{g(tenantA, RoleSteward)}, nil, false, tenantA, PermWrite, []string{TypeKeyPerformanceIndicator}, false},
		{"office and steward together", []Grant{g(tenantA, RoleOffice), g(tenantA, RoleSteward)}, nil, false, tenantA, PermWrite, []string{TypeKeyPerformanceIndicator, TypeDataset}, true},
		{"viewer does not write", []Grant{g(tenantA, RoleViewer)}, nil, false, tenantA, PermWrite, []string{typeT1}, false},
		{"operator acts on alerts", []Grant{g(tenantA, RoleOperator)}, nil, false, tenantA, PermAlerts, nil, true},
		{"operator does not write entities", []Grant{g(tenantA, RoleOperator)}, nil, false, tenantA, PermWrite, []string{typeT1}, false},
		{"several permissions at once", []Grant{g(tenantA, RoleOperator)}, nil, false, tenantA, PermDevices | PermRules, nil, true},
		{"several permissions, one missing", []Grant{g(tenantA, RoleOperator)}, nil, false, tenantA, PermDevices | PermAudit, nil, false},
		{"several permissions from two grants", []Grant{g(tenantA, RoleOperator), g(tenantA, RoleEditor)}, nil, false, tenantA, PermDevices | PermWrite, []string{typeT1}, true},
		{"no permission asked", []Grant{g(tenantA, RoleAdmin)}, nil, false, tenantA, 0, nil, false},
		{"an unknown permission", []Grant{g(tenantA, RoleAdmin)}, nil, false, tenantA, permEnd, nil, false},
		{"admin of A on B", []Grant{g(tenantA, RoleAdmin)}, nil, false, tenantB, PermRead, nil, false},
		{"admin of A, platform-wide", []Grant{g(tenantA, RoleAdmin)}, nil, false, AllTenants, PermAdmin, nil, false},
		{"admin of every tenant on B", []Grant{g(AllTenants, RoleAdmin)}, nil, false, tenantB, PermWrite, []string{typeT1}, true},
		{"admin of every tenant, platform-wide", []Grant{g(AllTenants, RoleAdmin)}, nil, false, AllTenants, PermContexts, nil, true},
		{"viewer of every tenant writes nothing", []Grant{g(AllTenants, RoleViewer)}, nil, false, tenantB, PermWrite, []string{typeT1}, false},
		{"default tenant grant", []Grant{g("", RoleViewer)}, nil, false, "", PermRead, nil, true},
		{"default tenant grant on A", []Grant{g("", RoleViewer)}, nil, false, tenantA, PermRead, nil, false},
		{"anonymous on a private tenant", nil, nil, true, tenantA, PermRead, nil, false},
		{"anonymous reads a public tenant", nil, []string{tenantA}, true, tenantA, PermRead, nil, true},
		{"anonymous streams a public tenant", nil, []string{tenantA}, true, tenantA, PermStream, nil, true},
		{"anonymous reads and streams a public tenant", nil, []string{tenantA}, true, tenantA, PermRead | PermStream, nil, true},
		{"anonymous does not subscribe on a public tenant", nil, []string{tenantA}, true, tenantA, PermSubscribe, nil, false},
		{"anonymous does not write a public tenant", nil, []string{tenantA}, true, tenantA, PermWrite, []string{typeT1}, false},
		{"anonymous on another tenant than the public one", nil, []string{tenantA}, true, tenantB, PermRead, nil, false},
		{"a user reads a public tenant", []Grant{g(tenantB, RoleViewer)}, []string{tenantA}, false, tenantA, PermRead, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub := map[string]bool{}
			for _, x := range tc.public {
				pub[x] = true
			}
			p := &Principal{kind: UserPrincipal, user: "u", rules: compile(tc.grants), public: pub}
			if tc.anon {
				p = &Principal{kind: Anonymous, public: pub}
			}
			if got := p.Can(tc.tenant, tc.perm, tc.types); got != tc.want {
				t.Errorf("Can(%q, %s, %v) = %v, want %v", tc.tenant, tc.perm, tc.types, got, tc.want)
			}
		})
	}
	var nilP *Principal
	if nilP.Can(tenantA, PermRead, nil) || (&Principal{}).Can(tenantA, PermRead, nil) {
		t.Error("a nil or zero principal may read")
	}
}

func TestValidateGrants(t *testing.T) {
	cases := []struct {
		name string
		g    Grant
		ok   bool
	}{
		{"admin everywhere", Grant{Tenant: AllTenants, Role: RoleAdmin}, true},
		{"viewer of the default tenant", Grant{Tenant: "", Role: RoleViewer}, true},
		{"limited editor", Grant{Tenant: tenantA, Role: RoleEditor, Types: []string{typeT1}}, true},
		{"unknown role", Grant{Tenant: tenantA, Role: "root"}, false},
		{"bad tenant", Grant{Tenant: "a b", Role: RoleViewer}, false},
		{"tenant pattern", Grant{Tenant: "city*", Role: RoleViewer}, false},
		{"types for a viewer", Grant{Tenant: tenantA, Role: RoleViewer, Types: []string{typeT1}}, false},
		{"types for the office", Grant{Tenant: tenantA, Role: RoleOffice, Types: []string{typeT1}}, false},
		{"a compact type", Grant{Tenant: tenantA, Role: RoleEditor, Types: []string{"Building"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateGrants([]Grant{tc.g})
			if (err == nil) != tc.ok {
				t.Errorf("ValidateGrants(%v) = %v, want ok %v", tc.g, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
		})
	}
}

func TestCoveredAndIntersect(t *testing.T) {
	g := func(tenant string, role Role, types ...string) Grant {
		return Grant{Tenant: tenant, Role: role, Types: types}
	}
	owner := []Grant{g(tenantA, RoleEditor, typeT1, typeT2), g(tenantB, RoleOperator), g(AllTenants, RoleViewer)}
	cases := []struct {
		name string
		key  []Grant
		ok   bool
	}{
		{"the same", owner, true},
		{"viewer of A", []Grant{g(tenantA, RoleViewer)}, true},
		{"editor of A, one type", []Grant{g(tenantA, RoleEditor, typeT1)}, true},
		{"editor of A, every type", []Grant{g(tenantA, RoleEditor)}, false},
		{"editor of A, another type", []Grant{g(tenantA, RoleEditor, typeT3)}, false},
		{"admin of A", []Grant{g(tenantA, RoleAdmin)}, false},
		{"operator of A", []Grant{g(tenantA, RoleOperator)}, false},
		{"operator of B", []Grant{g(tenantB, RoleOperator)}, true},
		{"editor of B", []Grant{g(tenantB, RoleEditor)}, false},
		{"viewer of C, through every tenant", []Grant{g("cityC", RoleViewer)}, true},
		{"viewer of every tenant", []Grant{g(AllTenants, RoleViewer)}, true},
		{"operator of every tenant", []Grant{g(AllTenants, RoleOperator)}, false},
		{"office of A", []Grant{g(tenantA, RoleOffice)}, false},
	}
	rules := compile(owner)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := covered(tc.key, rules)
			if (err == nil) != tc.ok {
				t.Fatalf("covered = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrNotSubset) {
				t.Errorf("error %v is not ErrNotSubset", err)
			}
		})
	}
	// An office key of an editor limited to the office's types, and of an
	// unlimited editor.
	if err := covered([]Grant{g(tenantA, RoleOffice)}, compile([]Grant{g(tenantA, RoleEditor, OfficeTypes()...)})); err != nil {
		t.Errorf("office within a limited editor: %v", err)
	}
	if err := covered([]Grant{g(tenantA, RoleOffice)}, compile([]Grant{g(tenantA, RoleEditor)})); err != nil {
		t.Errorf("office within an editor: %v", err)
	}

	// Intersections: what both allow, for every tenant, permission and
	// type the cases name.
	sets := [][]Grant{
		owner,
		{g(AllTenants, RoleAdmin)},
		{g(tenantA, RoleAdmin)},
		{g(tenantA, RoleEditor, typeT2, typeT3)},
		{g(tenantA, RoleOffice), g(tenantB, RoleViewer)},
		{g(AllTenants, RoleEditor, typeT1)},
		{},
	}
	tenants := []string{tenantA, tenantB, "cityC", AllTenants}
	typeSets := [][]string{nil, {typeT1}, {typeT2}, {typeT3}, {typeT1, typeT2}, {TypeKeyPerformanceIndicator}}
	for i, x := range sets {
		for j, y := range sets {
			rx, ry := compile(x), compile(y)
			ri := intersect(rx, ry)
			for _, tn := range tenants {
				for _, p := range allPerms {
					for _, ts := range typeSets {
						want := allows(rx, tn, p, ts) && allows(ry, tn, p, ts)
						if got := allows(ri, tn, p, ts); got != want {
							t.Errorf("sets %d∩%d on %s, %s %v: %v, want %v", i, j, tn, p, ts, got, want)
						}
					}
				}
			}
		}
	}
}
