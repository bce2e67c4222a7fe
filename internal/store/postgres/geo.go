package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/encoding/wkb"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
)

// entity_geo holds one row per GeoProperty instance whose value is a valid
// geometry (as geo.ValueGeometry reads it, the same reading as
// geo.Query.Match): the geometry itself with PostGIS, its bounding box with
// the native box type. Either way the GiST index only selects candidates:
// every entity whose geometry's box meets the query's box (geo.Query.Bound),
// a superset of what Match accepts, which decides.

// geoKind is the type of entity_geo.geom in this database, chosen by the
// first migration.
type geoKind uint8

const (
	geoPostGIS geoKind = iota + 1 // geometry(Geometry, 4326)
	geoBox                        // box
)

func (k geoKind) String() string {
	if k == geoPostGIS {
		return "PostGIS"
	}
	return "box"
}

func readGeoKind(ctx context.Context, pool *pgxpool.Pool) (geoKind, error) {
	var typ string
	err := pool.QueryRow(ctx, `SELECT t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
		WHERE a.attrelid = 'entity_geo'::regclass AND a.attname = 'geom'`).Scan(&typ)
	if err != nil {
		return 0, fmt.Errorf("postgres: reading the geometry column's type: %w", err)
	}
	switch typ {
	case "geometry":
		return geoPostGIS, nil
	case "box":
		return geoBox, nil
	}
	return 0, fmt.Errorf("postgres: entity_geo.geom has type %q, want geometry or box", typ)
}

// geoInst is one GeoProperty instance of an entity as entity_geo holds it.
type geoInst struct {
	name  string
	bound orb.Bound
	wkb   []byte // with PostGIS
}

// geoInsts returns the rows entity_geo holds for e, by attribute name.
func geoInsts(e *ngsild.Entity, kind geoKind) ([]geoInst, error) {
	if e == nil {
		return nil, nil
	}
	var out []geoInst
	for _, name := range geoNames(e) {
		for _, a := range e.Attrs[name] {
			if a == nil || a.Kind != ngsild.GeoProperty {
				continue
			}
			g, err := geo.ValueGeometry(a.Value)
			if err != nil {
				continue // never matches a geo-query: nothing to index
			}
			gi := geoInst{name: name, bound: g.Bound()}
			if kind == geoPostGIS {
				if gi.wkb, err = wkb.Marshal(g); err != nil {
					return nil, fmt.Errorf("geometry of %s: %w", name, err)
				}
			}
			out = append(out, gi)
		}
	}
	return out, nil
}

// geoNames returns the sorted names of e's attributes that have a
// GeoProperty instance.
func geoNames(e *ngsild.Entity) []string {
	var names []string
	for name, as := range e.Attrs {
		for _, a := range as {
			if a != nil && a.Kind == ngsild.GeoProperty {
				names = append(names, name)
				break
			}
		}
	}
	slices.Sort(names)
	return names
}

// sameGeo reports whether old and new have the same entity_geo rows: the
// same types and GeoProperty instances (copy-on-write keeps unchanged ones),
// else the same geometries.
func sameGeo(old, new *ngsild.Entity, kind geoKind) (bool, error) {
	if !slices.Equal(old.Types, new.Types) {
		return false, nil
	}
	on, nn := geoNames(old), geoNames(new)
	if !slices.Equal(on, nn) {
		return false, nil
	}
	same := true
	for _, name := range on {
		if !slices.Equal(old.Attrs[name], new.Attrs[name]) {
			same = false
			break
		}
	}
	if same {
		return true, nil
	}
	og, err := geoInsts(old, kind)
	if err != nil {
		return false, err
	}
	ng, err := geoInsts(new, kind)
	if err != nil {
		return false, err
	}
	return slices.EqualFunc(og, ng, func(a, b geoInst) bool {
		return a.name == b.name && a.bound == b.bound && bytes.Equal(a.wkb, b.wkb)
	}), nil
}

// geoRows collects entity_geo rows for one multi-row INSERT: one per
// GeoProperty instance and type of the entity.
type geoRows struct {
	tids              []int64
	ids, names, types []string
	wkbs              [][]byte
	x1, y1, x2, y2    []float64
}

func (r *geoRows) add(tid int64, id string, types []string, gs []geoInst) {
	for _, g := range gs {
		for _, typ := range types {
			r.tids = append(r.tids, tid)
			r.ids = append(r.ids, id)
			r.names = append(r.names, g.name)
			r.types = append(r.types, typ)
			r.wkbs = append(r.wkbs, g.wkb)
			r.x1 = append(r.x1, g.bound.Min[0])
			r.y1 = append(r.y1, g.bound.Min[1])
			r.x2 = append(r.x2, g.bound.Max[0])
			r.y2 = append(r.y2, g.bound.Max[1])
		}
	}
}

// insertSQL returns the statement inserting r and its arguments.
func (r *geoRows) insertSQL(kind geoKind) (string, []any) {
	if kind == geoPostGIS {
		return `INSERT INTO entity_geo (tid, id, name, type, tkey, geom)
			SELECT u.tid, u.id, u.name, u.type, ` + tkeySQL("u.type", "u.name") + `, ST_GeomFromWKB(u.w, 4326)
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bytea[]) AS u(tid, id, name, type, w)`,
			[]any{r.tids, r.ids, r.names, r.types, r.wkbs}
	}
	return `INSERT INTO entity_geo (tid, id, name, type, tkey, geom)
		SELECT u.tid, u.id, u.name, u.type, ` + tkeySQL("u.type", "u.name") + `, box(point(u.x1, u.y1), point(u.x2, u.y2))
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[], $7::float8[], $8::float8[])
			AS u(tid, id, name, type, x1, y1, x2, y2)`,
		[]any{r.tids, r.ids, r.names, r.types, r.x1, r.y1, r.x2, r.y2}
}

// tkeySQL is the expression of entity_geo.tkey for a type and an attribute
// name: a hash PostgreSQL computes (hashtextextended is stable across
// versions: hash partitioning relies on it), so that the migration that
// added the column and the queries agree without Go hashing anything.
// Collisions only add candidates.
func tkeySQL(typ, name string) string {
	return "hashtextextended(" + typ + " || ' ' || " + name + ", 0)"
}

// boxSQL is the condition "g.geom meets the box $n..$n+3" (min x, min y,
// max x, max y), an operator the GiST index answers.
func boxSQL(kind geoKind, n int) string {
	if kind == geoPostGIS {
		return fmt.Sprintf("g.geom && ST_MakeEnvelope($%d, $%d, $%d, $%d, 4326)", n, n+1, n+2, n+3)
	}
	return fmt.Sprintf("g.geom && box(point($%d, $%d), point($%d, $%d))", n, n+1, n+2, n+3)
}
