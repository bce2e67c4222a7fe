package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/ngsild"
)

// zenne users, zenne keys and zenne audit talk to the admin API of a
// running zenne (docs/ADMIN.md).

const adminFlagsUsage = `
Every command authenticates with an API key (--key, or ZENNE_API_KEY), or
with --login NAME and that user's password. Secrets are never taken from
the command line: passwords and setup tokens are read from the terminal
(without echo) or, when stdin is not a terminal, one per line from stdin
(first the --login password, then the setup token, then the new password).

A grant G is ROLE@TENANT: ROLE is admin, operator, editor, office, steward
or viewer; TENANT is a tenant, * for every tenant, or nothing (ROLE@) for
the default tenant; without @TENANT, the grant is on --tenant. An editor
limited to some entity types lists them, as expanded IRIs, after '=':
editor@mobility=https://smartdatamodels.org/dataModel.Parking/ParkingSpot

Flags:
`

const usersUsage = `Usage: zenne users [--api URL] [--key KEY | --login NAME] [--tenant T] COMMAND

Manage the accounts of a running zenne. A platform administrator manages
every account; with --tenant T, a tenant's administrator manages the
accounts whose grants are all on T.

Commands:
  list                       the accounts, with their grants
  show NAME                  one account and its API keys
  create NAME --grant G...   create an account; its password is read (see below)
  create NAME --grant G... --no-password
                             create a service account: it acts through API keys only
  grant NAME G...            give an account more grants
  grant --revoke NAME G...   take grants away from an account
  passwd NAME                set an account's password (and end a lock-out)
  disable NAME               disable an account: it cannot log in, its keys do nothing
  enable NAME                enable a disabled account
  unlock NAME                end a lock-out after failed logins
  delete NAME                delete an account and its API keys
  setup NAME                 create the first administrator of a new installation
                             with the setup token the server printed in its log
` + adminFlagsUsage

const keysUsage = `Usage: zenne keys [--api URL] [--key KEY | --login NAME] [--tenant T] COMMAND

Manage API keys ("zk_..."). Without --user, the commands act on your own
keys, which anyone may; with --user NAME, on another account's
(administrators).

Commands:
  list [--user NAME | --all]  the keys: yours, NAME's, or every key you administer
  create --name N [--grant G]... [--expires D] [--user NAME]
                              create a key (default: with all the owner's grants)
                              and print its secret, this once
  revoke ID [--user NAME]     revoke a key: it is refused at once, and stays listed
  delete ID [--user NAME]     delete a key for good

ID is the key's id (zenne keys list); its secret is taken too, and only
its id is sent. D is a duration (90d, 12h) or a time (2030-01-31 or RFC 3339).
` + adminFlagsUsage

const auditUsage = `Usage: zenne audit [--from T] [--to T] [--who WHO] [--limit N] [--export FILE]

The audit log: every change and every refusal, newest first (at most
--limit, default 100). With --export FILE (- for stdout), all the entries
selected, oldest first, as JSON lines. --tenant T reads tenant T's entries
(what a tenant's administrator may read); a platform administrator without
--tenant reads every entry.

  --from, --to  the period (RFC 3339 or YYYY-MM-DD; from <= time < to)
  --who         a user (with their keys), a key id, or anonymous
` + adminFlagsUsage

// adminCLI is what zenne users, keys and audit share: their flags, the
// client, and where secrets are read.
type adminCLI struct {
	fs                      *flag.FlagSet
	api, key, login, tenant *string
	stdin                   io.Reader
	lines                   *bufio.Reader // stdin, when it is not a terminal
	stdout, stderr          io.Writer
}

func newAdminCLI(name, usage string, stdin io.Reader, stdout, stderr io.Writer) *adminCLI {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &adminCLI{fs: fs, stdin: stdin, stdout: stdout, stderr: stderr}
	c.api = fs.String("api", envOr("ZENNE_API", "http://127.0.0.1:1026"), "the zenne to talk to (ZENNE_API)")
	c.key = keyFlag(fs)
	c.login = fs.String("login", "", "authenticate as this user, with their password (read from the terminal or stdin)")
	c.tenant = fs.String("tenant", os.Getenv("ZENNE_TENANT"), "act on this tenant's accounts and audit log (ZENNE_TENANT; default: the platform's)")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	return c
}

// parse parses args, flags anywhere, and returns the command and its
// arguments; allowed lists the flags each command takes besides the
// common ones.
func (c *adminCLI) parse(args []string, allowed map[string][]string, needCommand bool) ([]string, error) {
	return parseCommand(c.fs, args, allowed, []string{"api", "key", "login", "tenant"}, needCommand)
}

// client returns the HTTP client of the admin API, authenticated as the
// flags say: with --login, the user's password (HTTP Basic); else the API
// key of --key or ZENNE_API_KEY.
func (c *adminCLI) client() (*provClient, error) {
	cl := c.anonymous()
	if *c.login != "" {
		pw, err := c.secret(fmt.Sprintf("password of %s: ", *c.login), false)
		if err != nil {
			return nil, err
		}
		authz := "Basic " + base64.StdEncoding.EncodeToString([]byte(*c.login+":"+pw))
		cl.http.Transport = withHeader{rt: http.DefaultTransport, key: "Authorization", value: authz}
		return cl, nil
	}
	cl.key = apiKey(*c.key)
	if _, err := auth.KeyID(cl.key); cl.key != "" && err != nil {
		return nil, errors.New("--key (or ZENNE_API_KEY) is not an API key: it looks like zk_<id>_<secret>, as 'zenne keys create' printed it")
	}
	return cl, nil
}

// anonymous is a client that sends no credentials.
func (c *adminCLI) anonymous() *provClient {
	return &provClient{base: strings.TrimRight(*c.api, "/"), tenant: *c.tenant, http: &http.Client{Timeout: 5 * time.Minute}}
}

// adminHints say what to do about the answers of the admin API, besides
// provClient's advice about credentials (401) and rights (403).
func adminHints(extra map[int]string) map[int]string {
	h := map[int]string{
		401: "or log in with --login NAME and your password",
		403: "managing accounts needs the admin right on their tenant: a tenant's administrator gives --tenant T",
	}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

// secret reads a secret: from the terminal without echo (asked twice when
// confirm), or else the next line of stdin.
func (c *adminCLI) secret(prompt string, confirm bool) (string, error) {
	if f, ok := c.stdin.(*os.File); ok && isTerminal(f) {
		s, err := readHidden(f, c.stderr, prompt)
		if err != nil || !confirm {
			return s, err
		}
		again, err := readHidden(f, c.stderr, "again: ")
		if err != nil {
			return "", err
		}
		if again != s {
			return "", errors.New("the two entries differ: try again")
		}
		return s, nil
	}
	if c.lines == nil {
		c.lines = bufio.NewReader(c.stdin)
	}
	line, err := c.lines.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err != nil && err != io.EOF {
			return "", err
		}
		return "", fmt.Errorf("%sexpected a line on stdin: type it at a terminal, or pipe it in", prompt)
	}
	return line, nil
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// readHidden reads a line from the terminal f with echo off (stty).
func readHidden(f *os.File, w io.Writer, prompt string) (string, error) {
	fmt.Fprint(w, prompt)
	off := exec.Command("stty", "-echo")
	off.Stdin = f
	if off.Run() == nil {
		defer func() {
			on := exec.Command("stty", "echo")
			on.Stdin = f
			on.Run()
			fmt.Fprintln(w)
		}()
	} else {
		fmt.Fprint(w, "(your typing will show) ")
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" && err != nil {
		return "", fmt.Errorf("reading from the terminal: %w", err)
	}
	return line, nil
}

// grantFlags is a repeatable --grant flag, read once every flag is
// parsed (a grant without @TENANT is on --tenant, given before or after).
type grantFlags []string

func (g *grantFlags) String() string { return strings.Join(*g, " ") }

func (g *grantFlags) Set(s string) error {
	*g = append(*g, s)
	return nil
}

// grants parses the grants, those without @TENANT on tenant.
func (g *grantFlags) grants(tenant string) ([]auth.Grant, error) {
	var out []auth.Grant
	for _, s := range *g {
		gr, err := parseGrant(s, tenant)
		if err != nil {
			return nil, err
		}
		out = append(out, gr)
	}
	return out, nil
}

// parseGrant reads ROLE[@TENANT][=TYPE,...]; without @TENANT, the grant is
// on tenant.
func parseGrant(s, tenant string) (auth.Grant, error) {
	head, types, hasTypes := strings.Cut(s, "=")
	role, t, hasTenant := strings.Cut(head, "@")
	if hasTenant {
		tenant = t
	}
	g := auth.Grant{Tenant: tenant, Role: auth.Role(role)}
	if !slices.Contains(auth.Roles(), g.Role) {
		return g, fmt.Errorf("grant %q: unknown role %q: give admin, operator, editor, office, steward or viewer, e.g. viewer@mobility", s, role)
	}
	if tenant != "" && tenant != auth.AllTenants && !ngsild.ValidTenant(tenant) {
		return g, fmt.Errorf("grant %q: %q is no tenant name: use letters, digits, '_', '-' and '.', * for every tenant, or nothing (%s@) for the default tenant", s, tenant, role)
	}
	if hasTypes {
		for _, ty := range strings.Split(types, ",") {
			if ty == "" {
				return g, fmt.Errorf("grant %q: an empty entity type: list expanded IRIs separated by commas after '='", s)
			}
			g.Types = append(g.Types, ty)
		}
	}
	return g, nil
}

// formatGrant writes a grant as parseGrant reads it.
func formatGrant(g auth.Grant) string {
	s := string(g.Role) + "@" + g.Tenant
	if len(g.Types) > 0 {
		s += "=" + strings.Join(g.Types, ",")
	}
	return s
}

func formatGrants(gs []auth.Grant) string {
	if len(gs) == 0 {
		return "-"
	}
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = formatGrant(g)
	}
	return strings.Join(out, " ")
}

func sameGrant(a, b auth.Grant) bool {
	return a.Tenant == b.Tenant && a.Role == b.Role && slices.Equal(a.Types, b.Types)
}

// The admin API's answers, as the commands read them.
type (
	apiUser struct {
		Name        string       `json:"name"`
		Grants      []auth.Grant `json:"grants"`
		Disabled    bool         `json:"disabled"`
		HasPassword bool         `json:"hasPassword"`
		LockedUntil time.Time    `json:"lockedUntil"`
		Created     time.Time    `json:"created"`
		Modified    time.Time    `json:"modified"`
	}
	keyInfo struct {
		Key      string       `json:"key"` // only when created
		ID       string       `json:"id"`
		Name     string       `json:"name"`
		Owner    string       `json:"owner"`
		Grants   []auth.Grant `json:"grants"`
		Created  time.Time    `json:"created"`
		Expires  time.Time    `json:"expires"`
		LastUsed time.Time    `json:"lastUsed"`
		Revoked  time.Time    `json:"revoked"`
	}
)

// getJSON GETs path and decodes the answer into v.
func getJSON(c *provClient, path string, v any) error {
	data, err := c.do(http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("the answer of %s does not decode: %v", path, err)
	}
	return nil
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func usersCmd(args []string, stdout, stderr io.Writer) error {
	return runUsers(args, os.Stdin, stdout, stderr)
}

func runUsers(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newAdminCLI("users", usersUsage, stdin, stdout, stderr)
	var grantArgs grantFlags
	c.fs.Var(&grantArgs, "grant", "create: a grant of the account (repeat it for several)")
	noPassword := c.fs.Bool("no-password", false, "create: a service account, without a password")
	revoke := c.fs.Bool("revoke", false, "grant: take the grants away")
	pos, err := c.parse(args, map[string][]string{"create": {"grant", "no-password"}, "grant": {"revoke"}}, true)
	if err != nil {
		return err
	}
	gs, err := grantArgs.grants(*c.tenant)
	if err != nil {
		return err
	}
	cmd := pos[0]
	if cmd == "setup" {
		return setupCmd(c, pos)
	}
	if !slices.Contains([]string{"list", "show", "create", "grant", "passwd", "disable", "enable", "unlock", "delete"}, cmd) {
		c.fs.Usage()
		return fmt.Errorf("unknown users command %q", cmd)
	}
	var name string
	if cmd != "list" {
		if name, err = need("users", pos, 1, "user name"); err != nil {
			return err
		}
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	p := "/admin/users/" + url.PathEscape(name)
	notFound := adminHints(map[int]string{404: "see the accounts with 'zenne users list' (with --tenant T for a tenant's)"})
	patch := func(body any, done string) error {
		data, _ := json.Marshal(body)
		if _, err := cl.do(http.MethodPatch, p, data); err != nil {
			return advise(err, notFound)
		}
		fmt.Fprintf(stdout, "%s %s\n", name, done)
		return nil
	}
	switch cmd {
	case "list":
		return listUsers(cl, stdout)
	case "show":
		return showUser(cl, stdout, name)
	case "create":
		if len(gs) == 0 {
			return fmt.Errorf("zenne users create %s: give its rights with --grant G, e.g. --grant viewer@mobility (see zenne users -h)", name)
		}
		body := map[string]any{"name": name, "grants": gs}
		if !*noPassword {
			pw, err := c.secret(fmt.Sprintf("password of %s: ", name), true)
			if err != nil {
				return err
			}
			body["password"] = pw
		}
		data, _ := json.Marshal(body)
		if _, err := cl.do(http.MethodPost, "/admin/users", data); err != nil {
			return advise(err, adminHints(map[int]string{409: "choose another name, or change the account with 'zenne users grant' and 'zenne users passwd'"}))
		}
		fmt.Fprintf(stdout, "user %s created with grants %s; give it an API key with 'zenne keys create --user %s --name NAME'\n", name, formatGrants(gs), name)
		return nil
	case "grant":
		return grantCmd(cl, stdout, name, pos[2:], *c.tenant, *revoke, notFound)
	case "passwd":
		pw, err := c.secret(fmt.Sprintf("new password of %s: ", name), true)
		if err != nil {
			return err
		}
		return patch(map[string]any{"password": pw}, "has a new password")
	case "disable":
		return patch(map[string]any{"disabled": true}, "disabled: it cannot log in and its API keys do nothing")
	case "enable":
		return patch(map[string]any{"disabled": false}, "enabled")
	case "unlock":
		return patch(map[string]any{"unlock": true}, "unlocked")
	}
	if _, err := cl.do(http.MethodDelete, p, nil); err != nil {
		return advise(err, notFound)
	}
	fmt.Fprintf(stdout, "user %s and its API keys deleted\n", name)
	return nil
}

func listUsers(c *provClient, w io.Writer) error {
	var us []apiUser
	if err := getJSON(c, "/admin/users", &us); err != nil {
		return advise(err, adminHints(nil))
	}
	if len(us) == 0 {
		fmt.Fprintln(w, "no accounts here; create one with 'zenne users create NAME --grant G'")
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tGRANTS\tPASSWORD\tSTATE\tMODIFIED")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, formatGrants(u.Grants), yesNo(u.HasPassword), state(u), localTime(u.Modified))
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func state(u apiUser) string {
	switch {
	case u.Disabled:
		return "disabled"
	case !u.LockedUntil.IsZero():
		return "locked until " + u.LockedUntil.Local().Format("15:04:05")
	}
	return "enabled"
}

func showUser(c *provClient, w io.Writer, name string) error {
	var u apiUser
	p := "/admin/users/" + url.PathEscape(name)
	if err := getJSON(c, p, &u); err != nil {
		return advise(err, adminHints(map[int]string{404: "see the accounts with 'zenne users list' (with --tenant T for a tenant's)"}))
	}
	password := "yes"
	if !u.HasPassword {
		password = "none: a service account, it acts through its API keys"
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "user\t%s\n", u.Name)
	fmt.Fprintf(tw, "grants\t%s\n", formatGrants(u.Grants))
	fmt.Fprintf(tw, "password\t%s\n", password)
	fmt.Fprintf(tw, "state\t%s\n", state(u))
	fmt.Fprintf(tw, "created\t%s\n", localTime(u.Created))
	fmt.Fprintf(tw, "modified\t%s\n", localTime(u.Modified))
	if err := tw.Flush(); err != nil {
		return err
	}
	var ks []keyInfo
	if err := getJSON(c, p+"/keys", &ks); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return printKeys(w, ks, fmt.Sprintf("%s has no API keys; make one with 'zenne keys create --user %s --name NAME'", name, name))
}

// grantCmd adds grants to an account, or takes them away.
func grantCmd(c *provClient, w io.Writer, name string, args []string, tenant string, revoke bool, hints map[int]string) error {
	if len(args) == 0 {
		return fmt.Errorf("zenne users grant %s: give the grants, e.g. editor@mobility (see zenne users -h)", name)
	}
	var u apiUser
	p := "/admin/users/" + url.PathEscape(name)
	if err := getJSON(c, p, &u); err != nil {
		return advise(err, hints)
	}
	next := slices.Clone(u.Grants)
	for _, a := range args {
		g, err := parseGrant(a, tenant)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(next, func(h auth.Grant) bool { return sameGrant(g, h) })
		switch {
		case revoke && i < 0:
			return fmt.Errorf("%s has no grant %s (its grants: %s)", name, formatGrant(g), formatGrants(u.Grants))
		case revoke:
			next = slices.Delete(next, i, i+1)
		case i < 0:
			next = append(next, g)
		}
	}
	if next == nil {
		next = []auth.Grant{}
	}
	data, _ := json.Marshal(map[string]any{"grants": next})
	if _, err := c.do(http.MethodPatch, p, data); err != nil {
		return advise(err, hints)
	}
	fmt.Fprintf(w, "%s's grants: %s\n", name, formatGrants(next))
	return nil
}

// setupCmd creates the first administrator with the setup token.
func setupCmd(c *adminCLI, pos []string) error {
	name, err := need("users", pos, 1, "name of the first administrator")
	if err != nil {
		return err
	}
	token, err := c.secret("setup token (from the server's log): ", false)
	if err != nil {
		return err
	}
	pw, err := c.secret(fmt.Sprintf("password of %s: ", name), true)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(map[string]string{"token": token, "name": name, "password": pw})
	if _, err := c.anonymous().do(http.MethodPost, "/admin/setup", data); err != nil {
		return advise(err, map[int]string{403: "give the token of the server's last start, once: after setup, log in with --login " + name})
	}
	fmt.Fprintf(c.stdout, "%s is administrator of every tenant; make yourself an API key with 'zenne keys create --login %s --name laptop'\n", name, name)
	return nil
}

func keysCmd(args []string, stdout, stderr io.Writer) error {
	return runKeys(args, os.Stdin, stdout, stderr)
}

func runKeys(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newAdminCLI("keys", keysUsage, stdin, stdout, stderr)
	var grantArgs grantFlags
	c.fs.Var(&grantArgs, "grant", "create: a grant of the key (repeat it for several; default: all the owner's)")
	user := c.fs.String("user", "", "the keys of this account rather than yours (administrators)")
	all := c.fs.Bool("all", false, "list: every key you administer")
	keyName := c.fs.String("name", "", "create: what the key is for, e.g. grafana")
	expires := c.fs.String("expires", "", "create: when the key expires: a duration (90d, 12h) or a time (default: never)")
	pos, err := c.parse(args, map[string][]string{"list": {"user", "all"}, "create": {"grant", "user", "name", "expires"},
		"revoke": {"user"}, "delete": {"user"}}, true)
	if err != nil {
		return err
	}
	gs, err := grantArgs.grants(*c.tenant)
	if err != nil {
		return err
	}
	cmd := pos[0]
	if !slices.Contains([]string{"list", "create", "revoke", "delete"}, cmd) {
		c.fs.Usage()
		return fmt.Errorf("unknown keys command %q", cmd)
	}
	if *user != "" && *all {
		return errors.New("zenne keys list: give --user NAME or --all, not both")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	own := "/admin/me/keys"
	if *user != "" {
		own = "/admin/users/" + url.PathEscape(*user) + "/keys"
	}
	hints := adminHints(map[int]string{404: "see the keys with 'zenne keys list' (--user NAME for another account's)"})
	switch cmd {
	case "list":
		path := own
		if *all {
			path = "/admin/keys"
		}
		var ks []keyInfo
		if err := getJSON(cl, path, &ks); err != nil {
			return advise(err, hints)
		}
		return printKeys(stdout, ks, "no API keys; make one with 'zenne keys create --name NAME'")
	case "create":
		if *keyName == "" {
			return errors.New("zenne keys create: name the key with --name, saying what it is for (e.g. --name grafana)")
		}
		body := map[string]any{"name": *keyName}
		if len(gs) > 0 {
			body["grants"] = gs
		}
		if *expires != "" {
			at, err := expiryTime(*expires, time.Now())
			if err != nil {
				return err
			}
			body["expires"] = at
		}
		data, _ := json.Marshal(body)
		resp, err := cl.do(http.MethodPost, own, data)
		if err != nil {
			return advise(err, adminHints(map[int]string{404: "see the accounts with 'zenne users list'",
				403: "a key's grants must be within your own rights (or, for --user, those you administer)",
				400: "a key's grants must be within its owner's: see them with 'zenne users show NAME'"}))
		}
		var k keyInfo
		if err := json.Unmarshal(resp, &k); err != nil || k.Key == "" {
			return fmt.Errorf("the answer holds no key: %v", err)
		}
		fmt.Fprintf(stderr, "API key %q of %s (id %s), grants %s, expires %s:\n", k.Name, k.Owner, k.ID, formatGrants(k.Grants), orNever(k.Expires))
		fmt.Fprintln(stdout, k.Key)
		fmt.Fprintln(stderr, "Store it now (in a password manager, or as ZENNE_API_KEY): it is shown this once and cannot be found again.")
		return nil
	}
	id, err := need("keys", pos, 1, "key id (see zenne keys list)")
	if err != nil {
		return err
	}
	if secretID, err := auth.KeyID(id); err == nil {
		id = secretID // a key's secret: only its id goes out
	}
	if !auth.ValidKeyID(id) {
		return fmt.Errorf("zenne keys %s: %q is not a key id: give the 12-character id that 'zenne keys list' shows", cmd, clipArg(id))
	}
	path := own + "/" + id
	if *user != "" {
		var k keyInfo
		if err := getJSON(cl, "/admin/keys/"+id, &k); err != nil {
			return advise(err, hints)
		}
		if k.Owner != *user {
			return fmt.Errorf("key %s is %s's, not %s's: nothing done", id, k.Owner, *user)
		}
		path = "/admin/keys/" + id
	}
	done := "revoked: it is refused from now on"
	if cmd == "delete" {
		path += "?delete=true"
		done = "deleted"
	}
	if _, err := cl.do(http.MethodDelete, path, nil); err != nil {
		return advise(err, hints)
	}
	fmt.Fprintf(stdout, "key %s %s\n", id, done)
	return nil
}

func clipArg(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

func orNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return localTime(t)
}

// expiryTime reads --expires: days (90d), a Go duration (12h) or a time
// (RFC 3339 or a local date), after now.
func expiryTime(s string, now time.Time) (string, error) {
	var at time.Time
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			at = now.AddDate(0, 0, n)
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		at = now.Add(d)
	} else if t, err := cliTime("expires", s); err == nil {
		at, _ = time.Parse(time.RFC3339Nano, t)
	}
	if at.IsZero() {
		return "", fmt.Errorf("--expires %q: give a duration such as 90d or 12h, or a time such as 2030-01-31", s)
	}
	if !at.After(now) {
		return "", fmt.Errorf("--expires %q: that is in the past", s)
	}
	return at.UTC().Format(time.RFC3339), nil
}

func printKeys(w io.Writer, ks []keyInfo, none string) error {
	if len(ks) == 0 {
		fmt.Fprintln(w, none)
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tNAME\tOWNER\tGRANTS\tCREATED\tEXPIRES\tLAST USED\tSTATE")
	now := time.Now()
	for _, k := range ks {
		st := "active"
		switch {
		case !k.Revoked.IsZero():
			st = "revoked " + localTime(k.Revoked)
		case !k.Expires.IsZero() && !k.Expires.After(now):
			st = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Owner, formatGrants(k.Grants), localTime(k.Created),
			orNever(k.Expires), localTime(k.LastUsed), st)
	}
	return tw.Flush()
}

func auditCmd(args []string, stdout, stderr io.Writer) error {
	return runAudit(args, os.Stdin, stdout, stderr)
}

func runAudit(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	c := newAdminCLI("audit", auditUsage, stdin, stdout, stderr)
	from := c.fs.String("from", "", "the start of the period (RFC 3339 or YYYY-MM-DD)")
	to := c.fs.String("to", "", "the end of the period (RFC 3339 or YYYY-MM-DD)")
	who := c.fs.String("who", "", "a user (with their keys), a key id, or anonymous")
	limit := c.fs.Int("limit", 0, "at most this many entries (list: default 100, at most 1000; export: all)")
	export := c.fs.String("export", "", "write the entries to this file as JSON lines, oldest first (- for stdout)")
	pos, err := c.parse(args, map[string][]string{"": {"from", "to", "who", "limit", "export"}}, false)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		c.fs.Usage()
		return fmt.Errorf("zenne audit takes no argument %q: filter with flags", pos[0])
	}
	q := url.Values{}
	for _, v := range []struct{ name, val string }{{"from", *from}, {"to", *to}} {
		t, err := cliTime(v.name, v.val)
		if err != nil {
			return err
		}
		if t != "" {
			q.Set(v.name, t)
		}
	}
	if *who != "" {
		q.Set("who", *who)
	}
	if *limit < 0 {
		return errors.New("--limit: give a positive number of entries")
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	hints := adminHints(map[int]string{403: "reading the audit log needs the audit right: on a tenant's log, give --tenant T; on the whole log, a platform administrator's key",
		400: "check --from, --to and --limit (see zenne audit -h)"})
	query := ""
	if len(q) > 0 {
		query = "?" + q.Encode()
	}
	if *export != "" {
		return exportAudit(cl, stdout, stderr, "/admin/audit/export"+query, *export, hints)
	}
	var es []auth.Entry
	if err := getJSON(cl, "/admin/audit"+query, &es); err != nil {
		return advise(err, hints)
	}
	if len(es) == 0 {
		fmt.Fprintln(stdout, "no entries")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tWHO\tKEY\tTENANT\tOUTCOME\tSTATUS\tREQUEST")
	for _, e := range es {
		tenant := e.Tenant
		if tenant == "" {
			tenant = "(default)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s %s\n", e.Time.Local().Format("2006-01-02 15:04:05"), e.Who, orDash(e.Key), tenant,
			e.Outcome, e.Status, e.Method, e.Path)
	}
	return tw.Flush()
}

// exportAudit streams the export into file (- for stdout), through a
// temporary file that becomes file only when the whole export arrived.
func exportAudit(c *provClient, stdout, stderr io.Writer, path, file string, hints map[int]string) error {
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.tenant != "" {
		req.Header.Set("NGSILD-Tenant", c.tenant)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%v: is zenne running there? Give its address with --api", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var p struct{ Detail string }
		if json.Unmarshal(data, &p) != nil || p.Detail == "" {
			p.Detail = strings.TrimSpace(string(data))
		}
		err := fmt.Errorf("%s: %s", resp.Status, p.Detail)
		if hint := c.keyHint(resp.StatusCode); hint != "" {
			err = fmt.Errorf("%w\n%s", err, hint)
		}
		return advise(err, hints)
	}
	if file == "-" {
		if _, err := io.Copy(stdout, resp.Body); err != nil {
			return fmt.Errorf("the export was cut short (%v): export again", err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), filepath.Base(file)+".*.part")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	lines := &lineCounter{w: tmp}
	if _, err := io.Copy(lines, resp.Body); err != nil {
		tmp.Close()
		return fmt.Errorf("the export was cut short (%v): export again", err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d audit entries written to %s\n", lines.n, file)
	return nil
}

// lineCounter counts the lines written through it.
type lineCounter struct {
	w io.Writer
	n int
}

func (l *lineCounter) Write(b []byte) (int, error) {
	for _, c := range b {
		if c == '\n' {
			l.n++
		}
	}
	return l.w.Write(b)
}
