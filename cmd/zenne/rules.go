package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zenne-city/zenne/internal/jsonld"
)

const rulesUsage = `Usage: zenne rules [--api URL] [--tenant T] [--key KEY] COMMAND

Manage the alarm rules of a running zenne (docs/ALARMS.md). The API key
(--key, or ZENNE_API_KEY) needs the rules right on the tenant: an
operator's or an admin's key (list and show: any role's, or none on a
public-read tenant).

Commands:
  list                   the rules, with what they have done
  show ID                one rule: its body, times and status
  add FILE               add the rule of a JSON file (- reads stdin)
  replace ID FILE        replace a rule with the one of a JSON file
  delete ID              delete a rule (the alerts it left open are cleared)
  pause ID               stop evaluating a rule
  resume ID              evaluate a paused rule again
  backtest ID [--from T] [--to T]
                         when the rule would have fired over stored history
                         (T: RFC 3339 or YYYY-MM-DD; default the last 30 days)

Flags:
`

const alertsUsage = `Usage: zenne alerts [--api URL] [--tenant T] [--key KEY] COMMAND

See and act on the alerts alarm rules open (docs/ALARMS.md). The API key
(--key, or ZENNE_API_KEY) needs the alerts right on the tenant to act: an
operator's or an admin's key (list: any role's, or none on a public tenant).

Commands:
  list [--open]                          the alerts (--open: those not resolved)
  ack ID --by WHO [--comment C]          acknowledge an alert
  assign ID --to WHO --by WHO [--comment C]
                                         assign an alert to someone
  resolve ID --by WHO --comment C        resolve an alert, saying how

Flags:
`

// cliFlags are the flags of zenne rules and zenne alerts; they may come
// before or after the command and its arguments.
type cliFlags struct {
	fs                           *flag.FlagSet
	api, tenant, key             *string
	from, to, by, comment, toWho *string
	open                         *bool
}

func newCLIFlags(name, usage string, stderr io.Writer) *cliFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &cliFlags{fs: fs}
	f.api = fs.String("api", envOr("ZENNE_API", "http://127.0.0.1:1026"), "the zenne to talk to (ZENNE_API)")
	f.tenant = fs.String("tenant", os.Getenv("ZENNE_TENANT"), "the NGSI-LD tenant (ZENNE_TENANT; default: the default tenant)")
	f.key = keyFlag(fs)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	return f
}

// parse parses args, flags anywhere, and returns the command and its
// arguments; allowed lists the flags each command takes besides --api,
// --tenant and --key.
func (f *cliFlags) parse(args []string, allowed map[string][]string) ([]string, error) {
	return parseCommand(f.fs, args, allowed, []string{"api", "tenant", "key"}, true)
}

// parseCommand parses the flags of a command group, which may come before,
// between or after the positional arguments; common are the flags every
// command of the group takes, allowed the others each command takes. With
// needCommand a command must be given.
func parseCommand(fs *flag.FlagSet, args []string, allowed map[string][]string, common []string, needCommand bool) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	cmd := ""
	if needCommand {
		if len(pos) == 0 {
			fs.Usage()
			return nil, fmt.Errorf("no %s command given", fs.Name())
		}
		cmd = pos[0]
	}
	var bad error
	fs.Visit(func(fl *flag.Flag) {
		if !slices.Contains(common, fl.Name) && !slices.Contains(allowed[cmd], fl.Name) && bad == nil {
			what := strings.TrimSpace("zenne " + fs.Name() + " " + cmd)
			bad = fmt.Errorf("%s does not take --%s (see zenne %s -h)", what, fl.Name, fs.Name())
		}
	})
	return pos, bad
}

func (f *cliFlags) client() *provClient {
	return &provClient{base: strings.TrimRight(*f.api, "/"), tenant: *f.tenant, key: apiKey(*f.key), http: &http.Client{Timeout: 5 * time.Minute}}
}

// need returns the n-th argument of a command, or says what is missing.
func need(group string, pos []string, n int, what string) (string, error) {
	if len(pos) <= n {
		return "", fmt.Errorf("zenne %s %s: give the %s", group, pos[0], what)
	}
	return pos[n], nil
}

func rulesCmd(args []string, stdout, stderr io.Writer) error {
	f := newCLIFlags("rules", rulesUsage, stderr)
	f.from = f.fs.String("from", "", "backtest: the start of the period (RFC 3339 or YYYY-MM-DD)")
	f.to = f.fs.String("to", "", "backtest: the end of the period (default: now)")
	pos, err := f.parse(args, map[string][]string{"backtest": {"from", "to"}})
	if err != nil {
		return err
	}
	c := f.client()
	if pos[0] == "list" {
		return listRules(c, stdout)
	}
	if !slices.Contains([]string{"show", "add", "replace", "delete", "pause", "resume", "backtest"}, pos[0]) {
		f.fs.Usage()
		return fmt.Errorf("unknown rules command %q", pos[0])
	}
	if pos[0] == "add" {
		file, err := need("rules", pos, 1, "JSON file of the rule")
		if err != nil {
			return err
		}
		body, err := readRule(file)
		if err != nil {
			return err
		}
		data, err := c.do(http.MethodPost, "/alarms/rules", body)
		if err != nil {
			return advise(err, map[int]string{
				400: "fix the rule (its members are described in docs/ALARMS.md) and add it again",
				409: "replace it with 'zenne rules replace ID FILE', or give the rule another id"})
		}
		var made struct{ ID string }
		json.Unmarshal(data, &made)
		fmt.Fprintf(stdout, "rule %s added; see what it does with 'zenne rules show %s'\n", made.ID, made.ID)
		return nil
	}
	id, err := need("rules", pos, 1, "rule id")
	if err != nil {
		return err
	}
	p := "/alarms/rules/" + url.PathEscape(id)
	notFound := map[int]string{404: "see the rules with 'zenne rules list'"}
	var done string
	switch pos[0] {
	case "show":
		return advise(c.printJSON(stdout, p), notFound)
	case "replace":
		file, err := need("rules", pos, 2, "JSON file of the rule")
		if err != nil {
			return err
		}
		body, err := readRule(file)
		if err != nil {
			return err
		}
		_, err = c.do(http.MethodPut, p, body)
		if err != nil {
			return advise(err, map[int]string{404: notFound[404] + ", or add it with 'zenne rules add FILE'",
				400: "fix the rule (its members are described in docs/ALARMS.md) and replace it again"})
		}
		done = "replaced"
	case "delete":
		_, err = c.do(http.MethodDelete, p, nil)
		done = "deleted; the alerts it left open are cleared"
	case "pause":
		_, err = c.do(http.MethodPatch, p, []byte(`{"paused": true}`))
		done = "paused"
	case "resume":
		_, err = c.do(http.MethodPatch, p, []byte(`{"paused": null}`))
		done = "resumed"
	case "backtest":
		return backtest(c, stdout, p+"/backtest", *f.from, *f.to)
	}
	if err != nil {
		return advise(err, notFound)
	}
	fmt.Fprintf(stdout, "rule %s %s\n", id, done)
	return nil
}

// readRule reads a rule file (- for stdin) and checks it is a JSON object.
func readRule(file string) ([]byte, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%s: expected a rule, a JSON object such as {\"kind\": \"threshold\", ...} (docs/ALARMS.md)", file)
	}
	return data, nil
}

// advise adds what to do next to an error the API answered with one of
// the statuses of hints.
func advise(err error, hints map[int]string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	// provClient.do's errors start with the HTTP status ("404 Not Found: ...").
	if len(msg) > 3 && msg[3] == ' ' {
		if status, e := strconv.Atoi(msg[:3]); e == nil {
			if h, ok := hints[status]; ok {
				return fmt.Errorf("%w\n%s", err, h)
			}
			if status == http.StatusServiceUnavailable {
				return fmt.Errorf("%w\ntry again in a few seconds", err)
			}
		}
	}
	return err
}

func listRules(c *provClient, w io.Writer) error {
	data, err := c.do(http.MethodGet, "/alarms/rules", nil)
	if err != nil {
		return err
	}
	var rules []struct {
		ID        string `json:"id"`
		Kind      string `json:"kind"`
		Attribute string `json:"attribute"`
		Severity  string `json:"severity"`
		Paused    bool   `json:"paused"`
		Status    struct {
			Evaluations int64  `json:"evaluations"`
			Active      int    `json:"alertsActive"`
			Opened      int64  `json:"alertsOpened"`
			LastError   string `json:"lastError"`
		} `json:"status"`
	}
	if err := json.Unmarshal(data, &rules); err != nil {
		return fmt.Errorf("the rules do not decode: %v", err)
	}
	if len(rules) == 0 {
		fmt.Fprintln(w, "no rules; add one with 'zenne rules add FILE' (docs/ALARMS.md)")
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tKIND\tATTRIBUTE\tSEVERITY\tSTATE\tOPEN\tOPENED\tEVALUATIONS\tLAST ERROR")
	for _, r := range rules {
		state := "running"
		if r.Paused {
			state = "paused"
		}
		sev := r.Severity
		if sev == "" {
			sev = "medium"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.ID, r.Kind, orDash(r.Attribute), sev, state,
			r.Status.Active, r.Status.Opened, r.Status.Evaluations, orDash(r.Status.LastError))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cliTime reads a time flag: RFC 3339, or a local date.
func cliTime(name, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	if t, err := time.ParseInLocation("2006-01-02", s, time.Local); err == nil {
		return t.UTC().Format(time.RFC3339), nil
	}
	return "", fmt.Errorf("--%s %q: give an RFC 3339 time such as 2025-03-01T00:00:00Z or a date such as 2025-03-01", name, s)
}

func backtest(c *provClient, w io.Writer, path, from, to string) error {
	q := url.Values{}
	for _, v := range []struct{ name, val string }{{"from", from}, {"to", to}} {
		t, err := cliTime(v.name, v.val)
		if err != nil {
			return err
		}
		if t != "" {
			q.Set(v.name, t)
		}
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	data, err := c.do(http.MethodPost, path, nil)
	if err != nil {
		return advise(err, map[int]string{404: "see the rules with 'zenne rules list'",
			400: "give --from before --to, at most two years apart"})
	}
	var rep struct {
		Rule      string    `json:"rule"`
		From      time.Time `json:"from"`
		To        time.Time `json:"to"`
		Entities  int       `json:"entities"`
		Readings  int64     `json:"readings"`
		Truncated bool      `json:"truncated"`
		Firings   []struct {
			Entity  string    `json:"entity"`
			Opened  time.Time `json:"opened"`
			Cleared time.Time `json:"cleared"`
			Value   float64   `json:"value"`
		} `json:"firings"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("the report does not decode: %v", err)
	}
	const day = "2006-01-02 15:04"
	fmt.Fprintf(w, "rule %s from %s to %s: %d entities, %d readings, %d alerts would have opened\n",
		rep.Rule, rep.From.Local().Format(day), rep.To.Local().Format(day), rep.Entities, rep.Readings, len(rep.Firings))
	if len(rep.Firings) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENTITY\tOPENED\tCLEARED\tVALUE")
	for _, f := range rep.Firings {
		cleared := "still active"
		if !f.Cleared.IsZero() {
			cleared = f.Cleared.Local().Format(day)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\n", f.Entity, f.Opened.Local().Format(day), cleared, f.Value)
	}
	if rep.Truncated {
		fmt.Fprintln(tw, "...\t(more firings than the report lists: back-test a shorter period)\t\t")
	}
	return tw.Flush()
}

func alertsCmd(args []string, stdout, stderr io.Writer) error {
	f := newCLIFlags("alerts", alertsUsage, stderr)
	f.open = f.fs.Bool("open", false, "list: only the alerts not resolved")
	f.by = f.fs.String("by", "", "ack, assign, resolve: who acts")
	f.toWho = f.fs.String("to", "", "assign: to whom")
	f.comment = f.fs.String("comment", "", "ack, assign, resolve: why, or how it was resolved")
	pos, err := f.parse(args, map[string][]string{"list": {"open"}, "ack": {"by", "comment"},
		"assign": {"to", "by", "comment"}, "resolve": {"by", "comment"}})
	if err != nil {
		return err
	}
	c := f.client()
	kind := map[string]string{"ack": "acknowledge", "acknowledge": "acknowledge", "assign": "assign", "resolve": "resolve"}[pos[0]]
	switch {
	case pos[0] == "list":
		return listAlerts(c, stdout, *f.open)
	case kind == "":
		f.fs.Usage()
		return fmt.Errorf("unknown alerts command %q", pos[0])
	}
	id, err := need("alerts", pos, 1, "alert id (see zenne alerts list)")
	if err != nil {
		return err
	}
	switch {
	case *f.by == "":
		return fmt.Errorf("zenne alerts %s: say who acts with --by WHO", pos[0])
	case kind == "assign" && *f.toWho == "":
		return errors.New("zenne alerts assign: say to whom with --to WHO")
	case kind == "resolve" && *f.comment == "":
		return errors.New("zenne alerts resolve: say how it was resolved with --comment C")
	}
	body := map[string]string{"by": *f.by}
	if *f.comment != "" {
		body["comment"] = *f.comment
	}
	if kind == "assign" {
		body["to"] = *f.toWho
	}
	data, _ := json.Marshal(body)
	if _, err := c.do(http.MethodPost, "/alarms/alerts/"+url.PathEscape(id)+"/"+kind, data); err != nil {
		return advise(err, map[int]string{404: "see the alerts with 'zenne alerts list'",
			409: "see where the alert stands with 'zenne alerts list'"})
	}
	switch kind {
	case "assign":
		fmt.Fprintf(stdout, "alert %s assigned to %s\n", id, *f.toWho)
	case "acknowledge":
		fmt.Fprintf(stdout, "alert %s acknowledged by %s\n", id, *f.by)
	default:
		fmt.Fprintf(stdout, "alert %s resolved by %s\n", id, *f.by)
	}
	return nil
}

// withHeader is a transport that adds a header to every request.
type withHeader struct {
	rt         http.RoundTripper
	key, value string
}

func (h withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.key, h.value)
	return h.rt.RoundTrip(r)
}

// listAlerts prints the tenant's alerts, from the NGSI-LD API in the
// Smart Data Models Alert terms.
func listAlerts(c *provClient, w io.Writer, open bool) error {
	link := "<" + jsonld.SDMContextURL("Alert") + `>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`
	hc := *c.http
	hc.Transport = withHeader{rt: http.DefaultTransport, key: "Link", value: link}
	lc := *c
	lc.http = &hc
	q := url.Values{"type": {"Alert"}, "options": {"keyValues"}, "limit": {"1000"}}
	if open {
		q.Set("q", `alertStatus!="resolved"`)
	}
	type alert struct {
		ID          string `json:"id"`
		Severity    string `json:"severity"`
		Condition   string `json:"condition"`
		AlertStatus string `json:"alertStatus"`
		AssignedTo  string `json:"assignedTo"`
		AlertSource any    `json:"alertSource"`
		DateIssued  any    `json:"dateIssued"`
	}
	var all []alert
	for offset := 0; ; {
		q.Set("offset", strconv.Itoa(offset))
		data, err := lc.do(http.MethodGet, "/ngsi-ld/v1/entities?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		var page []alert
		if err := json.Unmarshal(data, &page); err != nil {
			return fmt.Errorf("the alerts do not decode: %v", err)
		}
		all = append(all, page...)
		if len(page) < 1000 {
			break
		}
		offset += len(page)
	}
	if len(all) == 0 {
		if open {
			fmt.Fprintln(w, "no open alerts")
		} else {
			fmt.Fprintln(w, "no alerts")
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ALERT\tSEVERITY\tCONDITION\tSTATUS\tSOURCE\tISSUED")
	for _, a := range all {
		status := a.AlertStatus
		if a.AssignedTo != "" && status != "resolved" {
			status += " (" + a.AssignedTo + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, orDash(a.Severity), orDash(a.Condition), orDash(status),
			orDash(objectOf(a.AlertSource)), issued(a.DateIssued))
	}
	return tw.Flush()
}

// objectOf is a relationship's object in keyValues (a string, or a list).
func objectOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, objectOf(e))
		}
		return strings.Join(out, ",")
	}
	return ""
}

// issued is a DateTime value in keyValues ({"@type": "DateTime",
// "@value": ...} or a string) as a local time.
func issued(v any) string {
	s, _ := v.(string)
	if m, ok := v.(map[string]any); ok {
		s, _ = m["@value"].(string)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.Local().Format("2006-01-02 15:04")
	}
	return orDash(s)
}
