package subscription

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// now is the fixed "current time" of the tests.
var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

var (
	ctxOnce sync.Once
	ctxVal  *jsonld.Context
	ctxErr  error
)

// testContext is a user @context with a few terms besides the core context
// (whose @vocab puts every other term in the default context).
func testContext(t testing.TB) *jsonld.Context {
	t.Helper()
	ctxOnce.Do(func() {
		r := jsonld.NewResolver(jsonld.Options{})
		ctxVal, ctxErr = r.Resolve(context.Background(), []any{
			map[string]any{
				"Building":    "https://smartdatamodels.org/dataModel.Building/Building",
				"Vehicle":     "https://smartdatamodels.org/dataModel.Transportation/Vehicle",
				"temperature": "https://smartdatamodels.org/temperature",
				"owner":       "https://smartdatamodels.org/owner",
				"ex":          "https://example.org/",
			},
			jsonld.CoreContext,
		})
	})
	if ctxErr != nil {
		t.Fatal(ctxErr)
	}
	return ctxVal
}

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return m
}

func mustParse(t testing.TB, body string) *Subscription {
	t.Helper()
	s, err := Parse(decode(t, body), testContext(t), now)
	if err != nil {
		t.Fatalf("Parse(%s): %v", body, err)
	}
	return s
}

// entity parses a normalized entity body with the test context.
func entity(t testing.TB, body string) *ngsild.Entity {
	t.Helper()
	e, err := ngsild.ParseEntity(decode(t, body), testContext(t), ngsild.ParseOptions{})
	if err != nil {
		t.Fatalf("ParseEntity(%s): %v", body, err)
	}
	return e
}

// attrs builds the Attrs of a change from kind/short-name pairs.
func attrs(t testing.TB, changes ...any) []store.AttrChange {
	t.Helper()
	var out []store.AttrChange
	for i := 0; i < len(changes); i += 2 {
		out = append(out, store.AttrChange{
			Kind: changes[i].(store.AttrChangeKind),
			Name: testContext(t).ExpandTerm(changes[i+1].(string)),
		})
	}
	return out
}

// allAttrs lists every attribute of e with kind k, as the store does for a
// created or deleted entity.
func allAttrs(e *ngsild.Entity, k store.AttrChangeKind) []store.AttrChange {
	var out []store.AttrChange
	for n := range e.Attrs {
		out = append(out, store.AttrChange{Name: n, Kind: k})
	}
	return out
}

// subView is a subscription with its parsed expressions replaced by their
// canonical text, for comparison.
type subView struct {
	Sub       Subscription
	Selectors []string
	Q, Scope  string
	Geo       string
}

func view(s *Subscription) subView {
	v := subView{Sub: *s, Q: s.Q.String(), Scope: s.ScopeQ.String()}
	v.Sub.Q, v.Sub.ScopeQ, v.Sub.GeoQ, v.Sub.Entities = nil, nil, nil, nil
	for _, sel := range s.Entities {
		pat := ""
		if sel.IDPattern != nil {
			pat = sel.IDPattern.String()
		}
		v.Selectors = append(v.Selectors, fmt.Sprintf("id=%q idPattern=%q type=%q", sel.ID, pat, sel.Type.String()))
	}
	if g := s.GeoQ; g != nil {
		v.Geo = fmt.Sprintf("%s %v %s %v %v", g.Rel, g.Geometry, g.Property, g.MaxDistance, g.MinDistance)
	}
	return v
}

// sameSubscription reports how a and b differ ("" when they are equal).
func sameSubscription(a, b *Subscription) string {
	va, vb := view(a), view(b)
	if reflect.DeepEqual(va, vb) {
		return ""
	}
	return fmt.Sprintf("\n got %+v\nwant %+v", vb, va)
}

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := ngsild.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// golden compares v, as indented JSON, with testdata/name (rewritten with
// -update).
func golden(t *testing.T, name string, v any) {
	t.Helper()
	got := marshal(t, v)
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n got %s\nwant %s", path, got, want)
	}
}

// roundTrip renders s as the notifier stores it and decodes the JSON back.
func roundTrip(t testing.TB, s *Subscription, c ngsild.Compactor) map[string]any {
	t.Helper()
	b, err := ngsild.Marshal(Render(s, Status{}, RenderOptions{Compact: c, SysAttrs: true, Now: now}))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("Render wrote invalid JSON %s: %v", b, err)
	}
	return m
}
