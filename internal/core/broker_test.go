package core_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/core"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

const ns = ngsild.DefaultContextNS

type expander struct{}

func (expander) ExpandTerm(t string) string { return ns + t }

func parse(t *testing.T, body string, opts ngsild.ParseOptions) *ngsild.Entity {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	e, err := ngsild.ParseEntity(m, expander{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func newBroker(t *testing.T) *core.Broker {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "zenne.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return core.New(st, core.Options{Now: func() time.Time { clock = clock.Add(time.Second); return clock }})
}

const bin = `{"id":"urn:ngsi-ld:Bin:1","type":"Bin",
  "level":{"type":"Property","value":0.5,"unitCode":"P1","accuracy":{"type":"Property","value":0.1}},
  "temp":[{"type":"Property","value":20},{"type":"Property","value":21,"datasetId":"urn:ds:b"}],
  "owner":{"type":"Relationship","object":"urn:ngsi-ld:Dept:1"}}`

// TestOperationsLeaveHandedOutEntitiesAlone: the broker changes entities
// copy-on-write, so an entity read before an operation is the same after it,
// while a new read shows the operation's effect.
func TestOperationsLeaveHandedOutEntitiesAlone(t *testing.T) {
	ctx := context.Background()
	id := "urn:ngsi-ld:Bin:1"
	cases := []struct {
		name  string
		op    func(b *core.Broker) error
		check func(t *testing.T, e *ngsild.Entity)
	}{
		{"partial update keeps sub-attributes", func(b *core.Broker) error {
			return b.PartialAttrUpdate(ctx, "", id, ns+"level", &ngsild.Attribute{Kind: ngsild.Property, Value: 0.9})
		}, func(t *testing.T, e *ngsild.Entity) {
			a := e.Instance(ns+"level", "")
			if a.Value != 0.9 || a.UnitCode != "P1" || a.Sub[ns+"accuracy"] == nil {
				t.Fatalf("level after partial update: %+v", a)
			}
		}},
		{"merge deletes with null and merges sub-attributes", func(b *core.Broker) error {
			return b.MergeEntity(ctx, "", id, parse(t, `{"owner":null,"level":{"type":"Property","value":0.7,"accuracy":null}}`, ngsild.ParseOptions{Merge: true, Fragment: true}))
		}, func(t *testing.T, e *ngsild.Entity) {
			a := e.Instance(ns+"level", "")
			if len(e.Attrs[ns+"owner"]) != 0 || a.Value != 0.7 || a.Sub[ns+"accuracy"] != nil || a.UnitCode != "P1" {
				t.Fatalf("after merge: owner %v level %+v", e.Attrs[ns+"owner"], a)
			}
		}},
		{"update replaces one datasetId instance", func(b *core.Broker) error {
			res, err := b.UpdateAttrs(ctx, "", id, parse(t, `{"temp":{"type":"Property","value":25,"datasetId":"urn:ds:b"},"missing":{"type":"Property","value":1}}`, ngsild.ParseOptions{Fragment: true}))
			if err == nil && (len(res.NotUpdated) != 1 || res.NotUpdated[0].Name != ns+"missing") {
				t.Fatalf("not updated: %+v", res.NotUpdated)
			}
			return err
		}, func(t *testing.T, e *ngsild.Entity) {
			if e.Instance(ns+"temp", "urn:ds:b").Value != 25.0 || e.Instance(ns+"temp", "").Value != 20.0 {
				t.Fatalf("temp instances: %+v %+v", e.Attrs[ns+"temp"][0], e.Attrs[ns+"temp"][1])
			}
		}},
		{"append with noOverwrite keeps what exists", func(b *core.Broker) error {
			res, err := b.AppendAttrs(ctx, "", id, parse(t, `{"level":{"type":"Property","value":1},"new":{"type":"Property","value":2}}`, ngsild.ParseOptions{Fragment: true}), true)
			if err == nil && len(res.NotUpdated) != 1 {
				t.Fatalf("not updated: %+v", res.NotUpdated)
			}
			return err
		}, func(t *testing.T, e *ngsild.Entity) {
			if e.Instance(ns+"level", "").Value != 0.5 || e.Instance(ns+"new", "").Value != 2.0 {
				t.Fatalf("after append: %+v", e.Attrs)
			}
		}},
		{"delete one instance", func(b *core.Broker) error {
			return b.DeleteAttr(ctx, "", id, ns+"temp", "urn:ds:b", false)
		}, func(t *testing.T, e *ngsild.Entity) {
			if len(e.Attrs[ns+"temp"]) != 1 || e.Instance(ns+"temp", "") == nil {
				t.Fatalf("temp after delete: %+v", e.Attrs[ns+"temp"])
			}
		}},
		{"replace keeps createdAt", func(b *core.Broker) error {
			return b.ReplaceEntity(ctx, "", id, parse(t, `{"id":"urn:ngsi-ld:Bin:1","type":"Bin","x":{"type":"Property","value":1}}`, ngsild.ParseOptions{}))
		}, func(t *testing.T, e *ngsild.Entity) {
			if len(e.Attrs) != 1 || e.CreatedAt.After(e.ModifiedAt) || e.CreatedAt.Equal(e.ModifiedAt) {
				t.Fatalf("after replace: attrs %d created %v modified %v", len(e.Attrs), e.CreatedAt, e.ModifiedAt)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t)
			if err := b.CreateEntity(ctx, "", parse(t, bin, ngsild.ParseOptions{})); err != nil {
				t.Fatal(err)
			}
			before, err := b.Entity(ctx, "", id)
			if err != nil {
				t.Fatal(err)
			}
			snapshot, _ := json.Marshal(before)
			if err := tc.op(b); err != nil {
				t.Fatal(err)
			}
			if after, _ := json.Marshal(before); string(after) != string(snapshot) {
				t.Fatalf("the entity read before the operation changed:\n%s\n%s", snapshot, after)
			}
			now, err := b.Entity(ctx, "", id)
			if err != nil {
				t.Fatal(err)
			}
			if !now.ModifiedAt.After(before.ModifiedAt) {
				t.Errorf("modifiedAt did not advance")
			}
			tc.check(t, now)
		})
	}
}

func TestBatchUpsertReportsCreatedAndErrors(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	if err := b.CreateEntity(ctx, "", parse(t, bin, ngsild.ParseOptions{})); err != nil {
		t.Fatal(err)
	}
	res, err := b.BatchUpsert(ctx, "", []*ngsild.Entity{
		parse(t, bin, ngsild.ParseOptions{}),
		parse(t, `{"id":"urn:ngsi-ld:Bin:2","type":"Bin"}`, ngsild.ParseOptions{}),
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Success) != 2 || len(res.Created) != 1 || res.Created[0] != "urn:ngsi-ld:Bin:2" {
		t.Fatalf("upsert result %+v", res)
	}
	res, err = b.BatchCreate(ctx, "", []*ngsild.Entity{parse(t, bin, ngsild.ParseOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) != 1 || res.Errors[0].Err.Type != ngsild.AlreadyExists {
		t.Fatalf("create of an existing entity: %+v", res)
	}
}

func TestWritesToUnknownTenant(t *testing.T) {
	ctx := context.Background()
	b := newBroker(t)
	err := b.DeleteEntity(ctx, "nowhere", "urn:x:1")
	if !ngsild.IsType(err, ngsild.NonexistentTenant) {
		t.Fatalf("delete in an unknown tenant: %v", err)
	}
	if _, err := b.Types(ctx, "nowhere"); !ngsild.IsType(err, ngsild.NonexistentTenant) {
		t.Fatalf("the failed delete created the tenant: %v", err)
	}
}
