package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

const devicesUsage = `Usage: zenne devices [--api URL] [--tenant T] [--key KEY] COMMAND

Register devices and service groups on a running zenne, through its
provisioning API (docs/DEVICES.md). The API key (--key, or ZENNE_API_KEY)
needs the devices right on the tenant: an operator's or an admin's key.

Commands:
  list                   the devices, with their status
  show ID                one device: mapping, static attributes, status
  add FILE               register the devices of a JSON file ({"devices": [...]}; - reads stdin)
  delete ID              delete a device's registration (its entity stays)
  deadletters ID         the device's last rejected messages and why
  groups                 the service groups
  groups add FILE        create the service groups of a JSON file ({"services": [...]})
  groups delete APIKEY   delete a service group

Flags:
`

func devicesCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devices", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", envOr("ZENNE_API", "http://127.0.0.1:1026"), "the zenne to talk to (ZENNE_API)")
	tenant := fs.String("tenant", os.Getenv("ZENNE_TENANT"), "the NGSI-LD tenant (ZENNE_TENANT; default: the default tenant)")
	key := keyFlag(fs)
	fs.Usage = func() { fmt.Fprint(stderr, devicesUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &provClient{base: strings.TrimRight(*api, "/"), tenant: *tenant, key: apiKey(*key), http: &http.Client{Timeout: 30 * time.Second}}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errors.New("no devices command given")
	}
	arg := func(what string) (string, error) {
		if len(rest) < 2 {
			return "", fmt.Errorf("zenne devices %s: give the %s", rest[0], what)
		}
		return rest[1], nil
	}
	switch rest[0] {
	case "list":
		return c.listDevices(stdout)
	case "show", "deadletters", "delete":
		id, err := arg("device id")
		if err != nil {
			return err
		}
		p := "/iot/devices/" + url.PathEscape(id)
		switch rest[0] {
		case "show":
			return c.printJSON(stdout, p)
		case "deadletters":
			return c.printJSON(stdout, p+"/deadletters")
		}
		if _, err := c.do(http.MethodDelete, p, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "device %s deleted\n", id)
		return nil
	case "add":
		file, err := arg("JSON file")
		if err != nil {
			return err
		}
		return c.add(stdout, "/iot/devices", file, "devices")
	case "groups":
		if len(rest) == 1 || rest[1] == "list" {
			return c.printJSON(stdout, "/iot/services")
		}
		if len(rest) < 3 {
			return fmt.Errorf("zenne devices groups %s: give the file or API key", rest[1])
		}
		switch rest[1] {
		case "add":
			return c.add(stdout, "/iot/services", rest[2], "services")
		case "delete":
			if _, err := c.do(http.MethodDelete, "/iot/services?apikey="+url.QueryEscape(rest[2]), nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "service group %s deleted\n", rest[2])
			return nil
		}
	}
	fs.Usage()
	return fmt.Errorf("unknown devices command %q", strings.Join(rest, " "))
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// envAPIKey is the environment variable of the API key the CLIs send.
const envAPIKey = "ZENNE_API_KEY"

// keyFlag defines --key, the API key a CLI sends. Its default is empty, so
// that -h does not print a key taken from the environment: apiKey reads
// ZENNE_API_KEY when the flag is not given.
func keyFlag(fs *flag.FlagSet) *string {
	return fs.String("key", "", "API key (zk_...) sent as Authorization: Bearer (default: $"+envAPIKey+"; zenne demo prints keys, 'zenne keys create' makes one)")
}

// apiKey is the key to send: the flag's, else ZENNE_API_KEY's.
func apiKey(flagValue string) string {
	if k := strings.TrimSpace(flagValue); k != "" {
		return k
	}
	return strings.TrimSpace(os.Getenv(envAPIKey))
}

// provClient calls zenne's HTTP API (provisioning, rules, alerts, ...).
type provClient struct {
	base, tenant string
	// key is the API key sent as a Bearer token ("": none, anonymous).
	key  string
	http *http.Client
}

func (c *provClient) do(method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.tenant != "" {
		req.Header.Set("NGSILD-Tenant", c.tenant)
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%v: is zenne running there? Give its address with --api", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var p struct{ Detail, Title string }
		var err error
		if json.Unmarshal(data, &p) == nil && p.Detail != "" {
			err = fmt.Errorf("%s: %s", resp.Status, p.Detail)
		} else {
			err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
		}
		if hint := c.keyHint(resp.StatusCode); hint != "" {
			err = fmt.Errorf("%w\n%s", err, hint)
		}
		return nil, err
	}
	return data, nil
}

// keyHint says what to do when the server refuses the request's
// credentials (401) or their rights (403); "" for other statuses.
func (c *provClient) keyHint(status int) string {
	switch {
	case status == http.StatusUnauthorized && c.key == "":
		return "the server wants an API key: give --key or set " + envAPIKey +
			" (zenne demo prints keys; 'zenne keys create' makes one)"
	case status == http.StatusUnauthorized:
		return "the server refused the API key: it is mistyped, revoked, expired or of another zenne; give another with --key or " + envAPIKey +
			" (zenne demo prints keys; 'zenne keys create' makes one)"
	case status == http.StatusForbidden && c.key == "":
		return "anonymous requests may not do this: give an API key with --key or " + envAPIKey +
			" (zenne demo prints keys; 'zenne keys create' makes one)"
	case status == http.StatusForbidden:
		tenant := "the default tenant"
		if c.tenant != "" {
			tenant = "tenant " + strconv.Quote(c.tenant)
		}
		return "the API key has no right to do this on " + tenant + ": give the key of a user with the right role (--key or " + envAPIKey +
			"; see docs/ADMIN.md), or check --tenant"
	}
	return ""
}

func (c *provClient) printJSON(w io.Writer, path string) error {
	data, err := c.do(http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		_, err = w.Write(data)
		return err
	}
	buf.WriteByte('\n')
	_, err = buf.WriteTo(w)
	return err
}

func (c *provClient) add(w io.Writer, path, file, member string) error {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return err
	}
	var body map[string][]json.RawMessage
	if err := json.Unmarshal(data, &body); err != nil || body[member] == nil {
		return fmt.Errorf("%s: expected a JSON object {%q: [...]} (docs/DEVICES.md)", file, member)
	}
	if _, err := c.do(http.MethodPost, path, data); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d %s registered\n", len(body[member]), member)
	return nil
}

func (c *provClient) listDevices(w io.Writer) error {
	var page struct {
		Count   int `json:"count"`
		Devices []struct {
			DeviceID   string `json:"device_id"`
			APIKey     string `json:"apikey"`
			EntityName string `json:"entity_name"`
			Status     struct {
				LastSeen  time.Time `json:"lastSeen"`
				Messages  uint64    `json:"messages"`
				Errors    uint64    `json:"errors"`
				Transport string    `json:"transport"`
			} `json:"status"`
		} `json:"devices"`
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tAPIKEY\tENTITY\tLAST SEEN\tMESSAGES\tERRORS")
	for offset := 0; ; offset += len(page.Devices) {
		data, err := c.do(http.MethodGet, fmt.Sprintf("/iot/devices?limit=1000&offset=%d", offset), nil)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &page); err != nil {
			return err
		}
		for _, d := range page.Devices {
			seen := "never"
			if !d.Status.LastSeen.IsZero() {
				seen = d.Status.LastSeen.Local().Format("2006-01-02 15:04:05") + " " + d.Status.Transport
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", d.DeviceID, d.APIKey, d.EntityName, seen, d.Status.Messages, d.Status.Errors)
		}
		if len(page.Devices) == 0 || offset+len(page.Devices) >= page.Count {
			break
		}
	}
	return tw.Flush()
}
