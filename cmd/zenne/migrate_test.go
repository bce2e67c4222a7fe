package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/auth"
	"github.com/zenne-city/zenne/internal/demo"
	"github.com/zenne-city/zenne/internal/store/postgres/pgtest"
)

// TestMigrateCommand copies an imported store into a new file and prints
// matching counts; a second run into the same target is refused.
func TestMigrateCommand(t *testing.T) {
	data := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run([]string{"import", "history", "--data", data, "--tenant", "water", writeCSV(t, readings)}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	from := "sqlite://" + filepath.Join(data, "zenne.db")
	to := "sqlite://" + filepath.Join(t.TempDir(), "copy.db")
	out.Reset()
	errOut.Reset()
	if err := run([]string{"migrate", "--from", from, "--to", to}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, want := range []string{"water", "copied and verified"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "history") {
		t.Errorf("no progress on stderr:\n%s", errOut.String())
	}
	// water: 2 entities, 3 history instances, copied and the same.
	if !regexpLine(out.String(), `water +2 +2 +3 +3 +same +same`) {
		t.Errorf("counts line missing:\n%s", out.String())
	}
	st, err := app.OpenStore(context.Background(), app.Config{StoreURL: to}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(context.Background(), "water", "urn:ngsi-ld:WaterMeter:w2"); err != nil {
		t.Errorf("the copy lacks an entity: %v", err)
	}
	st.Close()

	err = run([]string{"migrate", "--from", from, "--to", to}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "not empty") || !strings.Contains(err.Error(), "new database") {
		t.Errorf("a second copy into the same store: %v", err)
	}
}

func TestMigrateUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{{"migrate"}, {"migrate", "--from", "sqlite:///a.db"}, {"migrate", "--from", "sqlite:///a.db", "--to", "sqlite:///a.db"}} {
		if err := run(args, &out, &errOut); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func regexpLine(text, pattern string) bool {
	return regexp.MustCompile(`(?m)^` + pattern + ` *$`).MatchString(text)
}

// TestMigrateDemoToPostgres moves the demo city from the embedded store to
// PostgreSQL with zenne migrate, then asks both the same API questions and
// expects the same answers.
func TestMigrateDemoToPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the demo city")
	}
	pg := pgtest.Database(t)
	ctx := context.Background()
	data := t.TempDir()
	// The administrator's key, registered on the first start; zenne
	// migrate copies the accounts and keys with the rest.
	key := auth.NewKeySecret()
	env := func(name string) string { return map[string]string{auth.EnvAdminKey: key}[name] }
	serve := func(storeURL string) *app.App {
		a, err := app.New(ctx, app.Config{Listen: "127.0.0.1:0", DataDir: data, StoreURL: storeURL, Version: "test", Log: slog.New(slog.DiscardHandler), Env: env})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := serve("")
	counts, err := a.LoadDemo(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.Close(ctx)

	var out, errOut bytes.Buffer
	if err := run([]string{"migrate", "--from", "sqlite://" + filepath.Join(data, "zenne.db"), "--to", pg}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	from, to := serve(""), serve(pg)
	defer from.Close(ctx)
	defer to.Close(ctx)
	waste := `<` + demo.SDMContext("WasteManagement") + `>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"`
	questions := []struct{ path, link string }{
		{"/ngsi-ld/v1/types?details=true", ""},
		{"/ngsi-ld/v1/attributes?details=true", ""},
		{"/ngsi-ld/v1/entities?type=WasteContainer&q=fillingLevel%3E0.5&options=keyValues&limit=1000&count=true", waste},
		{"/ngsi-ld/v1/entities?type=WasteContainer&georel=near%3BmaxDistance%3D%3D1000&geometry=Point&coordinates=%5B4.3525,50.8467%5D&limit=1000", waste},
		{"/ngsi-ld/v1/entities?idPattern=%5Eurn:ngsi-ld:AirQualityObserved:.*&options=sysAttrs&limit=1000", ""},
	}
	// Every type, by its full name as /types gives it without a context.
	var types struct {
		TypeList []string `json:"typeList"`
	}
	body, _ := get(t, from.URL()+"/ngsi-ld/v1/types", "", key)
	if err := json.Unmarshal([]byte(body), &types); err != nil || len(types.TypeList) < len(counts) {
		t.Fatalf("types: %v %s", err, body)
	}
	for _, typ := range types.TypeList {
		questions = append(questions, struct{ path, link string }{"/ngsi-ld/v1/entities?type=" + url.QueryEscape(typ) + "&limit=1000&count=true&options=sysAttrs", ""})
	}
	for _, qu := range questions {
		q := qu.path
		want, wantHdr := get(t, from.URL()+q, qu.link, key)
		got, gotHdr := get(t, to.URL()+q, qu.link, key)
		if got != want || gotHdr != wantHdr {
			t.Errorf("%s differs after the migration (%s / %s):\nSQLite:     %.300s\nPostgreSQL: %.300s", q, wantHdr, gotHdr, want, got)
		}
		if len(want) < 10 {
			t.Errorf("%s: an empty answer (%q) proves nothing", q, want)
		}
	}
}

// get returns the body and the NGSILD-Results-Count header of a GET sent
// with an API key.
func get(t *testing.T, u, link, key string) (string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if link != "" {
		req.Header.Set("Link", link)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", u, res.StatusCode, err, b)
	}
	return string(b), res.Header.Get("NGSILD-Results-Count")
}
