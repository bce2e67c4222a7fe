package main

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/zenne-city/zenne/internal/app"
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
