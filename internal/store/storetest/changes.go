package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// delAttr is an op that deletes one attribute, keeping the others the
// same values (as the broker does).
func delAttr(id, name string) store.Op {
	return store.Op{ID: id, Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) {
		if cur == nil {
			return nil, errMissing
		}
		n := cur.Derive()
		delete(n.Attrs, Expand(name))
		return n, nil
	}}
}

// changeLine is a change as the tests compare it.
func changeLine(c store.Change) string {
	s := fmt.Sprintf("%d %q %s %s", c.Seq, c.Tenant, c.Kind, c.ID)
	for _, a := range c.Attrs {
		s += fmt.Sprintf(" %s:%s", a.Kind, a.Name[len(ngsild.DefaultContextNS):])
	}
	return s
}

func changeLog(t *testing.T, s store.Store) store.ChangeLog {
	t.Helper()
	cl, ok := s.(store.ChangeLog)
	if !ok {
		t.Skip("the store keeps no change log")
	}
	return cl
}

// testChangeLog: every committed op that changes an entity is one change,
// numbered in commit order, told to the watcher before the write returns
// and kept in the durable log, which reads back the same.
func testChangeLog(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := openStore(t, open)
	cl := changeLog(t, s)
	var mu sync.Mutex
	var watched []store.Change
	cl.WatchChanges(func(cs []store.Change) {
		mu.Lock()
		watched = append(watched, cs...)
		mu.Unlock()
	})
	base := cl.LastChange()
	seen := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(watched)
	}

	mustWrite(t, s, "", Create(Ent("urn:a", []string{"T"}, "x", Prop(1.0), "y", Prop("a"))))
	if seen() != 1 {
		t.Fatalf("after the first write returned, the watcher had %d changes, want 1", seen())
	}
	mustWrite(t, s, "", setAttr("urn:a", "x", Prop(2.0)))
	mustWrite(t, s, "", setAttr("urn:a", "z", Prop(true)))
	mustWrite(t, s, "", delAttr("urn:a", "y"))
	// A failing op and an op that changes nothing are not changes.
	res := write(t, s, "", Create(Ent("urn:a", []string{"T"})),
		store.Op{ID: "urn:a", Apply: func(cur *ngsild.Entity) (*ngsild.Entity, error) { return cur, nil }})
	if res[0].Err == nil {
		t.Fatal("creating an existing entity succeeded")
	}
	// Two ops on one entity in one write are two changes.
	mustWrite(t, s, "city", Create(Ent("urn:b", []string{"T"}, "x", Prop(5.0))), setAttr("urn:b", "x", Prop(6.0)))
	mustWrite(t, s, "", Delete("urn:a"))

	want := []string{
		"1 \"\" entityCreated urn:a attributeCreated:x attributeCreated:y",
		"2 \"\" entityUpdated urn:a attributeUpdated:x",
		"3 \"\" entityUpdated urn:a attributeCreated:z",
		"4 \"\" entityUpdated urn:a attributeDeleted:y",
		"5 \"city\" entityCreated urn:b attributeCreated:x",
		"6 \"city\" entityUpdated urn:b attributeUpdated:x",
		"7 \"\" entityDeleted urn:a attributeDeleted:x attributeDeleted:z",
	}
	rebase := func(cs []store.Change) []string {
		var out []string
		for _, c := range cs {
			c.Seq -= base
			out = append(out, changeLine(c))
		}
		return out
	}
	mu.Lock()
	got := rebase(watched)
	mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("watched changes:\n got  %q\n want %q", got, want)
	}
	if last := cl.LastChange(); last != base+7 {
		t.Errorf("LastChange = %d, want %d", last, base+7)
	}
	w2 := watched[1]
	if w2.Before.Attrs[Expand("x")][0].Value != 1.0 || w2.After.Attrs[Expand("x")][0].Value != 2.0 {
		t.Errorf("update change: before %s after %s", dump(w2.Before), dump(w2.After))
	}

	logged, err := cl.Changes(ctx, base, 100)
	if err != nil {
		t.Fatalf("Changes: %v", err)
	}
	if got := rebase(logged); !slices.Equal(got, want) {
		t.Errorf("logged changes:\n got  %q\n want %q", got, want)
	}
	// What the log keeps: the whole entity after, and before it the
	// attributes the change updated or deleted.
	l2 := logged[1]
	sameEntity(t, "logged update's After", l2.After, watched[1].After)
	if l2.Before == nil || len(l2.Before.Attrs[Expand("x")]) != 1 || l2.Before.Attrs[Expand("x")][0].Value != 1.0 {
		t.Errorf("logged update's Before lacks the old x: %s", dump(l2.Before))
	}
	if l2.Before.ID != "urn:a" || !slices.Equal(l2.Before.Types, []string{Expand("T")}) {
		t.Errorf("logged update's Before lacks id or types: %s", dump(l2.Before))
	}
	if l7 := logged[6]; l7.After != nil || l7.Before == nil || len(l7.Before.Attrs) != 2 {
		t.Errorf("logged delete: before %s after %s", dump(l7.Before), dump(l7.After))
	}
	if logged[0].At.IsZero() || !logged[0].At.Equal(watched[0].At) {
		t.Errorf("commit time: logged %v, watched %v", logged[0].At, watched[0].At)
	}
	// Paging by position.
	page, err := cl.Changes(ctx, base+2, 3)
	if err != nil || len(page) != 3 || page[0].Seq != base+3 || page[2].Seq != base+5 {
		t.Errorf("Changes(after %d, max 3) = %d changes from %v, %v", base+2, len(page), page, err)
	}
	if none, err := cl.Changes(ctx, base+7, 10); err != nil || len(none) != 0 {
		t.Errorf("Changes after the last = %v, %v; want none", none, err)
	}

	// Trimmed changes are gone, later ones stay.
	if err := cl.TrimChanges(ctx, base+4); err != nil {
		t.Fatalf("TrimChanges: %v", err)
	}
	if _, err := cl.Changes(ctx, base+2, 10); !errors.Is(err, store.ErrChangesGone) {
		t.Errorf("reading trimmed changes: err = %v, want ErrChangesGone", err)
	}
	rest, err := cl.Changes(ctx, base+4, 10)
	if err != nil || len(rest) != 3 || rest[0].Seq != base+5 {
		t.Errorf("changes after the trimmed ones: %v, %v", rest, err)
	}
}

// testChangeLogReopen: the log and the numbering survive a restart.
func testChangeLogReopen(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := openStore(t, open)
	cl := changeLog(t, s)
	base := cl.LastChange()
	for i := range 5 {
		mustWrite(t, s, "", Upsert(Ent(fmt.Sprintf("urn:r%d", i), []string{"T"}, "v", Prop(float64(i)))))
	}
	if err := cl.TrimChanges(ctx, base+5); err != nil { // all of them: the numbering must still go on
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, open)
	cl = s.(store.ChangeLog)
	if last := cl.LastChange(); last != base+5 {
		t.Fatalf("LastChange after reopen = %d, want %d", last, base+5)
	}
	mustWrite(t, s, "", setAttr("urn:r1", "v", Prop(10.0)))
	cs, err := cl.Changes(ctx, base+5, 10)
	if err != nil || len(cs) != 1 || cs[0].Seq != base+6 || cs[0].Kind != store.EntityUpdated {
		t.Fatalf("change after reopen: %v, %v", cs, err)
	}
}
