package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/zenne-city/zenne/internal/auth"
)

// DemoAccount is an account `zenne demo` creates and prints.
type DemoAccount struct {
	User     string
	Password string
	Key      string // an API key with the account's rights
	Role     auth.Role
	What     string // what the account is for, in a few words
}

// parkingSpot is the type the demo's mobility editor may write.
const parkingSpot = "https://smartdatamodels.org/dataModel.Parking/ParkingSpot"

// DemoPassword makes a demo account's password: fresh and random each run,
// since the demo is reachable on the network like any zenne.
func DemoPassword() string { return rand.Text()[:16] }

// CreateDemoAccounts gives the demo city an account for each role besides
// the administrator "admin" (created at start with adminPassword, through
// ZENNE_ADMIN_PASSWORD), each with a random password and an API key, and
// opens the default tenant to public reading, as a city's open data is.
func (a *App) CreateDemoAccounts(ctx context.Context, adminPassword string) ([]DemoAccount, error) {
	accounts := []struct {
		user  string
		grant auth.Grant
		what  string
	}{
		{"energy-cell", auth.Grant{Role: auth.RoleOperator}, "devices, alarm rules and alerts"},
		{"mobility", auth.Grant{Role: auth.RoleEditor, Types: []string{parkingSpot}}, "writes parking spots only"},
		{"smart-city-office", auth.Grant{Role: auth.RoleOffice}, "initiatives and KPIs"},
		{"data-steward", auth.Grant{Role: auth.RoleSteward}, "the open data catalogue"},
		{"viewer", auth.Grant{Role: auth.RoleViewer}, "reads everything, changes nothing"},
	}
	admin := []auth.Grant{{Tenant: auth.AllTenants, Role: auth.RoleAdmin}}
	key, _, err := a.Auth.CreateKey(ctx, auth.AdminUser, "demo", admin, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("demo key of %s: %w", auth.AdminUser, err)
	}
	out := []DemoAccount{{User: auth.AdminUser, Password: adminPassword, Key: key, Role: auth.RoleAdmin, What: "everything, on every tenant"}}
	for _, acc := range accounts {
		pw := DemoPassword()
		grants := []auth.Grant{acc.grant}
		if _, err := a.Auth.CreateUser(ctx, acc.user, pw, grants); err != nil {
			return nil, fmt.Errorf("demo account %s: %w", acc.user, err)
		}
		key, _, err := a.Auth.CreateKey(ctx, acc.user, "demo", grants, time.Time{})
		if err != nil {
			return nil, fmt.Errorf("demo key of %s: %w", acc.user, err)
		}
		out = append(out, DemoAccount{User: acc.user, Password: pw, Key: key, Role: acc.grant.Role, What: acc.what})
	}
	if err := a.Auth.SetPublicRead(ctx, "", true); err != nil {
		return nil, fmt.Errorf("open the demo city to public reading: %w", err)
	}
	return out, nil
}
