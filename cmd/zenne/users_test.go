package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/apitest"
	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/auth"
)

const (
	cliPassword  = "correct horse battery staple"
	cliPassword2 = "another long pass phrase"
)

// adminRun runs zenne users, keys or audit in-process against s, with
// stdin as the lines of secrets it reads; it returns stdout and stderr.
func adminRun(t *testing.T, s *apitest.Server, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"--api", s.URL}, args[1:]...)
	var err error
	switch args[0] {
	case "users":
		err = runUsers(full, strings.NewReader(stdin), &out, &errOut)
	case "keys":
		err = runKeys(full, strings.NewReader(stdin), &out, &errOut)
	case "audit":
		err = runAudit(full, strings.NewReader(stdin), &out, &errOut)
	default:
		t.Fatalf("not an admin command: %s", args[0])
	}
	return out.String(), errOut.String(), err
}

// cleanEnv keeps the environment of whoever runs the tests out of them.
func cleanEnv(t *testing.T) {
	for _, v := range []string{"ZENNE_API_KEY", "ZENNE_TENANT", "ZENNE_API"} {
		t.Setenv(v, "")
	}
}

// TestUsersCommand drives zenne users through an account's life, as the
// platform administrator and as a tenant's administrator.
func TestUsersCommand(t *testing.T) {
	cleanEnv(t)
	s := apitest.Start(t)
	admin := []string{"--key", s.AdminKey}
	ok := func(stdin string, want string, args ...string) string {
		t.Helper()
		out, errOut, err := adminRun(t, s, stdin, append(args, admin...)...)
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf("zenne %s: %v\n%s%s\nwant %q", strings.Join(args, " "), err, out, errOut, want)
		}
		return out
	}
	ok(cliPassword+"\n", "user bob created with grants viewer@a editor@a=https://x.org/T",
		"users", "create", "bob", "--grant", "viewer@a", "--grant", "editor@a=https://x.org/T")
	ok("", "user svc created", "users", "create", "svc", "--tenant", "a", "--grant", "operator", "--no-password")
	out := ok("", "bob", "users", "list")
	if !regexp.MustCompile(`svc\s+operator@a\s+no\s+enabled`).MatchString(out) {
		t.Errorf("users list:\n%s", out)
	}
	out = ok("", "password  yes", "users", "show", "bob")
	if !strings.Contains(out, "bob has no API keys") {
		t.Errorf("users show:\n%s", out)
	}
	ok("", "bob's grants: viewer@a editor@a=https://x.org/T operator@a", "users", "grant", "bob", "operator@a", "viewer@a")
	ok("", "bob's grants: editor@a=https://x.org/T operator@a", "users", "grant", "--revoke", "bob", "viewer@a")
	ok(cliPassword2+"\n", "bob has a new password", "users", "passwd", "bob")
	ok("", "bob disabled", "users", "disable", "bob")
	if out := ok("", "bob", "users", "list"); !strings.Contains(out, "disabled") {
		t.Errorf("bob not shown disabled:\n%s", out)
	}
	ok("", "bob enabled", "users", "enable", "bob")
	ok("", "bob unlocked", "users", "unlock", "bob")
	// bob logs in with his new password.
	if out, errOut, err := adminRun(t, s, cliPassword2+"\n", "keys", "list", "--login", "bob"); err != nil || !strings.Contains(out, "no API keys") {
		t.Fatalf("keys list --login bob: %v\n%s%s", err, out, errOut)
	}
	ok("", "user svc and its API keys deleted", "users", "delete", "svc")

	// Tenant a's administrator sees and changes a's accounts only.
	ctx := context.Background()
	adminA := auth.Grant{Tenant: "a", Role: auth.RoleAdmin}
	if _, err := s.App.Auth.CreateUser(ctx, "admin-a", "", []auth.Grant{adminA}); err != nil {
		t.Fatal(err)
	}
	keyA, _, err := s.App.Auth.CreateKey(ctx, "admin-a", "cli", []auth.Grant{adminA}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = adminRun(t, s, "", "users", "list", "--key", keyA, "--tenant", "a")
	if err != nil || !strings.Contains(out, "bob") || strings.Contains(out, "admin ") {
		t.Errorf("tenant a's list: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"users", "list", "--key", keyA}, "403 Forbidden"},
		{[]string{"users", "list", "--key", keyA}, "--tenant T"},
		{[]string{"users", "create", "x", "--grant", "admin@*", "--no-password", "--key", keyA, "--tenant", "a"}, "may not give admin on *"},
		{[]string{"users", "show", "admin", "--key", keyA, "--tenant", "a"}, "zenne users list"},
		{[]string{"users", "list"}, "401 Unauthorized"},
		{[]string{"users", "list", "--key", "nope"}, "is not an API key"},
		{[]string{"users", "show", "nobody", "--key", s.AdminKey}, `user "nobody" not found`},
		{[]string{"users", "create", "x", "--key", s.AdminKey}, "--grant"},
		{[]string{"users", "create", "x", "--grant", "boss@a", "--key", s.AdminKey}, `unknown role "boss"`},
		{[]string{"users", "grant", "--revoke", "bob", "viewer@b", "--key", s.AdminKey}, "bob has no grant viewer@b"},
		{[]string{"users", "passwd", "bob", "--key", s.AdminKey}, "expected a line on stdin"},
		{[]string{"users", "list", "--revoke", "--key", s.AdminKey}, "does not take --revoke"},
		{[]string{"users", "frobnicate", "--key", s.AdminKey}, `unknown users command "frobnicate"`},
		{[]string{"users", "--api", "http://127.0.0.1:1", "list"}, "--api"},
	} {
		out, errOut, err := adminRun(t, s, "", c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("zenne %s: %v\n%s%s\nwant an error with %q", strings.Join(c.args, " "), err, out, errOut, c.want)
		}
	}
}

// TestKeysCommand: keys are made, listed, revoked and deleted; the secret
// is printed once, alone on stdout.
func TestKeysCommand(t *testing.T) {
	cleanEnv(t)
	s := apitest.Start(t)
	if _, err := s.App.Auth.CreateUser(context.Background(), "bob", cliPassword,
		[]auth.Grant{{Tenant: "a", Role: auth.RoleEditor}, {Tenant: "b", Role: auth.RoleViewer}}); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) (string, string) {
		t.Helper()
		out, errOut, err := adminRun(t, s, stdin, args...)
		if err != nil {
			t.Fatalf("zenne %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out, errOut
	}
	secret, note := run("", "keys", "create", "--key", s.AdminKey, "--user", "bob", "--name", "etl", "--grant", "editor@a", "--expires", "90d")
	secret = strings.TrimSpace(secret)
	etl, err := auth.KeyID(secret)
	if err != nil || !strings.Contains(note, "shown this once") || !strings.Contains(note, `"etl" of bob`) {
		t.Fatalf("keys create printed %q and %q", secret, note)
	}
	// bob makes his own key with his password, and lists his keys with it.
	mine, _ := run(cliPassword+"\n", "keys", "create", "--login", "bob", "--name", "laptop", "--grant", "viewer@b")
	mine = strings.TrimSpace(mine)
	out, _ := run("", "keys", "list", "--key", mine)
	if !regexp.MustCompile(etl+`\s+etl\s+bob\s+editor@a\s`).MatchString(out) || !strings.Contains(out, "laptop") || strings.Contains(out, mine) {
		t.Errorf("keys list:\n%s", out)
	}
	if out, _ := run("", "keys", "list", "--all", "--key", s.AdminKey); !strings.Contains(out, "ZENNE_ADMIN_KEY") || !strings.Contains(out, "laptop") {
		t.Errorf("keys list --all:\n%s", out)
	}
	// A key cannot make a key beyond itself, nor take another account's.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "create", "--key", mine, "--name", "x", "--grant", "editor@a"}, "beyond your own rights"},
		{[]string{"keys", "create", "--key", mine}, "--name"},
		{[]string{"keys", "create", "--key", mine, "--name", "x", "--expires", "yesterday"}, "--expires"},
		{[]string{"keys", "revoke", etl, "--key", s.AdminKey, "--user", "admin"}, "is bob's, not admin's"},
		{[]string{"keys", "revoke", "nope", "--key", mine}, "not a key id"},
		{[]string{"keys", "list", "--all", "--user", "bob", "--key", mine}, "not both"},
		{[]string{"keys", "list", "--all", "--key", mine}, "403"},
	} {
		out, errOut, err := adminRun(t, s, "", c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("zenne %s: %v\n%s%s\nwant an error with %q", strings.Join(c.args, " "), err, out, errOut, c.want)
		}
	}
	// Revoked by an administrator, the key is refused; bob revokes his own
	// key given as its secret (only its id is sent), and deletes etl.
	if out, _ := run("", "keys", "revoke", etl, "--key", s.AdminKey, "--user", "bob"); !strings.Contains(out, "key "+etl+" revoked") {
		t.Errorf("revoke: %s", out)
	}
	if _, _, err := adminRun(t, s, "", "users", "list", "--key", secret); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("a revoked key: %v", err)
	}
	run(cliPassword+"\n", "keys", "delete", etl, "--login", "bob")
	run(cliPassword+"\n", "keys", "revoke", mine, "--login", "bob")
	out, _ = run(cliPassword+"\n", "keys", "list", "--login", "bob")
	if strings.Contains(out, etl) || !strings.Contains(out, "revoked") {
		t.Errorf("after delete and revoke:\n%s", out)
	}
}

// TestAuditCommand lists, filters and exports the audit log, which holds
// no password and no secret.
func TestAuditCommand(t *testing.T) {
	cleanEnv(t)
	s := apitest.Start(t)
	_, _, err := adminRun(t, s, cliPassword+"\n", "users", "create", "bob", "--grant", "viewer@a", "--key", s.AdminKey)
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := adminRun(t, s, "", "keys", "create", "--user", "bob", "--name", "k", "--key", s.AdminKey)
	if err != nil {
		t.Fatal(err)
	}
	secret = strings.TrimSpace(secret)
	if _, _, err := adminRun(t, s, "", "users", "grant", "bob", "operator@a", "--key", s.AdminKey, "--tenant", "a"); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := adminRun(t, s, "", "audit", "--key", s.AdminKey)
	if err != nil || !regexp.MustCompile(`admin\s+\w{12}\s+\*\s+ok\s+201\s+POST /admin/users\n`).MatchString(out) ||
		!regexp.MustCompile(`admin\s+\w{12}\s+a\s+ok\s+200\s+PATCH /admin/users/bob\n`).MatchString(out) {
		t.Fatalf("zenne audit: %v\n%s%s", err, out, errOut)
	}
	if out, _, err := adminRun(t, s, "", "audit", "--key", s.AdminKey, "--tenant", "a"); err != nil || strings.Contains(out, "POST /admin/users\n") ||
		!strings.Contains(out, "PATCH /admin/users/bob") {
		t.Errorf("zenne audit --tenant a: %v\n%s", err, out)
	}
	if out, _, err := adminRun(t, s, "", "audit", "--key", s.AdminKey, "--from", "2000-01-01", "--to", "2000-01-02"); err != nil || out != "no entries\n" {
		t.Errorf("zenne audit in 2000: %v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	if _, errOut, err := adminRun(t, s, "", "audit", "--key", s.AdminKey, "--export", file, "--who", "admin"); err != nil || !strings.Contains(errOut, "3 audit entries written") {
		t.Fatalf("zenne audit --export: %v\n%s", err, errOut)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e auth.Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("export line %q: %v", l, err)
		}
		actions = append(actions, e.Action)
	}
	if want := []string{"POST /admin/users", "POST /admin/users/{name}/keys", "PATCH /admin/users/{name}"}; !slices.Equal(actions, want) {
		t.Errorf("exported %v, want %v", actions, want)
	}
	stdout, _, err := adminRun(t, s, "", "audit", "--key", s.AdminKey, "--export", "-")
	if err != nil || strings.Count(stdout, "\n") < 3 {
		t.Errorf("export to stdout: %v\n%s", err, stdout)
	}
	for _, sec := range []string{cliPassword, secret, secret[16:], s.AdminKey} {
		if strings.Contains(string(data)+stdout, sec) {
			t.Errorf("the exported audit log holds a secret")
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"audit", "--key", s.AdminKey, "list"}, "takes no argument"},
		{[]string{"audit", "--key", s.AdminKey, "--from", "last week"}, "--from"},
		{[]string{"audit", "--key", s.AdminKey, "--limit", "5000"}, "from 1 to 1000"},
		{[]string{"audit", "--key", secret}, "may not audit"},
	} {
		if _, _, err := adminRun(t, s, "", c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("zenne %s: %v, want an error with %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	// Through run, as the command line calls it.
	var o, e bytes.Buffer
	if err := run([]string{"audit", "--api", s.URL, "--key", s.AdminKey, "--limit", "1"}, &o, &e); err != nil || strings.Count(o.String(), "\n") != 2 {
		t.Errorf("zenne audit --limit 1: %v\n%s%s", err, o.String(), e.String())
	}
}

// syncBuffer is a log a server writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestUsersSetupCommand: a new installation's first administrator, made
// with the setup token of the server's log, then a key for them.
func TestUsersSetupCommand(t *testing.T) {
	cleanEnv(t)
	var logs syncBuffer
	s := apitest.StartWith(t, t.TempDir(), func(c *app.Config) {
		c.Env = func(string) string { return "" }
		c.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	m := regexp.MustCompile(`setupToken=(zs_[A-Za-z0-9_-]{43})`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no setup token logged:\n%s", logs.String())
	}
	if _, _, err := adminRun(t, s, "zs_wrong\n"+cliPassword+"\n", "users", "setup", "root"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("setup with a wrong token: %v", err)
	}
	out, errOut, err := adminRun(t, s, m[1]+"\n"+cliPassword+"\n", "users", "setup", "root")
	if err != nil || !strings.Contains(out, "root is administrator of every tenant") {
		t.Fatalf("zenne users setup: %v\n%s%s", err, out, errOut)
	}
	key, _, err := adminRun(t, s, cliPassword+"\n", "keys", "create", "--login", "root", "--name", "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if out, _, err := adminRun(t, s, "", "users", "list", "--key", strings.TrimSpace(key)); err != nil || !strings.Contains(out, "admin@*") {
		t.Errorf("users list with root's key: %v\n%s", err, out)
	}
}

// FuzzParseGrant: a grant the parser accepts is written back as it was
// read.
func FuzzParseGrant(f *testing.F) {
	for _, s := range []string{"viewer", "viewer@a", "admin@*", "editor@", "editor@mobility=https://x.org/T,https://x.org/U",
		"boss@a", "viewer@a b", "editor@a=", "editor@a=,x", "@", "=", "viewer@a@b", "editor@a=x=y"} {
		f.Add(s, "")
		f.Add(s, "city")
	}
	f.Fuzz(func(t *testing.T, s, tenant string) {
		g, err := parseGrant(s, tenant)
		if err != nil {
			return
		}
		back, err := parseGrant(formatGrant(g), "elsewhere")
		if err != nil || !sameGrant(g, back) {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, g, formatGrant(g), back, err)
		}
		if err := auth.ValidateGrants([]auth.Grant{{Tenant: g.Tenant, Role: g.Role}}); err != nil {
			t.Fatalf("%q accepted as %+v: %v", s, g, err)
		}
	})
}
