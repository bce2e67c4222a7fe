package subscription

import (
	"sort"
	"time"

	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// Data builds the entity as the notification of change c, triggered by t
// (what Match returned), carries it in its data array (5.3.1, 5.8.6),
// compacted with compact (nil: expanded names):
//
//   - after a creation or an update, the entity as it is now, in
//     notification.format with notification.attributes, sysAttrs and lang;
//     for attributeDeleted and entityUpdated, the attributes the update
//     deleted (watched ones) are added with the NGSI-LD Null as value;
//   - for entityDeleted, the id, type and deletedAt (the commit time); its
//     attributes only with showChanges, each deleted and with its previous
//     value;
//   - for attributeDeleted on a deleted entity, the id, type, deletedAt and
//     the deleted (watched) attributes.
//
// A deleted attribute has "urn:ngsi-ld:null" as value or object, or
// {"@none": "urn:ngsi-ld:null"} as languageMap (5.2.1), ["urn:ngsi-ld:null"]
// for the lists, and deletedAt with sysAttrs. With showChanges (normalized
// format only, 5.2.14), each updated or deleted attribute instance also
// carries its value before the change as previousValue, previousObject,
// previousLanguageMap, previousJson, previousVocab, previousValueList or
// previousObjectList, after its kind (instances the op did not write carry
// none).
//
// For a periodic notification, pass a change of kind EntityUpdated holding
// only After, and the trigger "": the data is the entity as it is.
func (s *Subscription) Data(c *store.Change, t Trigger, compact ngsild.Compactor) ngsild.Object {
	if compact == nil {
		compact = expanded{}
	}
	n := &s.Notification
	d := &dataBuilder{
		s: s,
		c: c,
		opts: ngsild.RenderOptions{
			Format:   n.Format,
			SysAttrs: n.SysAttrs,
			Compact:  compact,
			Lang:     s.Lang,
			Attrs:    n.attrSet,
		},
		showChanges: n.ShowChanges && n.Format == ngsild.Normalized,
	}
	if c.Kind == store.EntityDeleted || c.After == nil {
		return d.deletedEntity(t)
	}
	obj := ngsild.Render(c.After, d.opts)
	if d.showChanges {
		d.addPrevious(obj)
	}
	if t == AttributeDeleted || t == EntityUpdated {
		obj = d.addDeleted(obj)
	}
	return obj
}

type dataBuilder struct {
	s           *Subscription
	c           *store.Change
	opts        ngsild.RenderOptions
	showChanges bool
}

func (d *dataBuilder) keep(name string) bool {
	return d.opts.Attrs == nil || d.opts.Attrs[name]
}

// before returns the instances of an attribute before the change.
func (d *dataBuilder) before(name string) []*ngsild.Attribute {
	if d.c.Before == nil {
		return nil
	}
	return d.c.Before.Attrs[name]
}

// deletedEntity is the data of a deleted entity: its id, types and system
// times as Render writes them, the deleted attributes and deletedAt.
func (d *dataBuilder) deletedEntity(t Trigger) ngsild.Object {
	e := d.c.Before
	if e == nil {
		e = &ngsild.Entity{}
	}
	id := d.c.ID
	if id == "" {
		id = e.ID
	}
	var names []string
	switch t {
	case AttributeDeleted:
		for _, n := range changedNames(d.c, e) {
			if d.s.watches(n) && d.keep(n) {
				names = append(names, n)
			}
		}
	case EntityDeleted:
		if d.showChanges {
			for n, insts := range e.Attrs {
				if len(insts) > 0 && d.keep(n) {
					names = append(names, n)
				}
			}
		}
	}
	shell := &ngsild.Entity{ID: id, Types: e.Types, CreatedAt: e.CreatedAt, ModifiedAt: e.ModifiedAt}
	o := d.insertDeleted(ngsild.Render(shell, d.opts), names)
	if !d.c.At.IsZero() {
		o.Set("deletedAt", ngsild.FormatTime(d.c.At))
	}
	return o
}

// addDeleted adds the attributes the update deleted to the rendered entity.
func (d *dataBuilder) addDeleted(obj ngsild.Object) ngsild.Object {
	var names []string
	for _, a := range d.c.Attrs {
		if a.Kind == store.AttrDeleted && d.s.watches(a.Name) && d.keep(a.Name) {
			if _, there := obj.Get(d.opts.Compact.CompactIRI(a.Name)); !there {
				names = append(names, a.Name)
			}
		}
	}
	return d.insertDeleted(obj, names)
}

// insertDeleted writes the deleted attributes names into the rendered
// entity obj, in order, before its createdAt and modifiedAt.
func (d *dataBuilder) insertDeleted(obj ngsild.Object, names []string) ngsild.Object {
	if len(names) == 0 {
		return obj
	}
	tail := 0
	if d.opts.SysAttrs && d.opts.Format != ngsild.KeyValues {
		for i := len(obj) - 1; i >= 0 && tail < 2 && (obj[i].Key == "createdAt" || obj[i].Key == "modifiedAt"); i-- {
			tail++
		}
	}
	out := make(ngsild.Object, 0, len(obj)+len(names))
	out = append(out, obj[:len(obj)-tail]...)
	for _, n := range d.sorted(names) {
		out.Set(d.opts.Compact.CompactIRI(n), d.deletedAttribute(d.before(n)))
	}
	return append(out, obj[len(obj)-tail:]...)
}

// sorted orders attribute names by their compacted form, as ngsild.Render does.
func (d *dataBuilder) sorted(names []string) []string {
	sort.Slice(names, func(i, j int) bool {
		return d.opts.Compact.CompactIRI(names[i]) < d.opts.Compact.CompactIRI(names[j])
	})
	return names
}

// deletedAttribute writes the instances an attribute had before it was
// deleted, each with the NGSI-LD Null as its value.
func (d *dataBuilder) deletedAttribute(insts []*ngsild.Attribute) any {
	if len(insts) == 0 {
		insts = []*ngsild.Attribute{{Kind: ngsild.Property}}
	}
	insts = defaultFirst(insts)
	out := make([]any, len(insts))
	for i, a := range insts {
		out[i] = d.deletedInstance(a)
	}
	if len(out) == 1 {
		return out[0]
	}
	return out
}

func (d *dataBuilder) deletedInstance(a *ngsild.Attribute) any {
	kind := a.Kind
	if !kind.Valid() {
		kind = ngsild.Property
	}
	if d.opts.Lang != "" && kind == ngsild.LanguageProperty {
		kind = ngsild.Property // rendered as the chosen language's text
	}
	null := nullValue(kind)
	if d.opts.Format == ngsild.KeyValues {
		switch kind {
		case ngsild.Property, ngsild.Relationship, ngsild.GeoProperty:
			return null
		}
		return ngsild.Object{{Key: kind.ValueKey(), Value: null}}
	}
	o := ngsild.Object{}
	if d.opts.Format == ngsild.Normalized {
		o.Set("type", string(kind))
	}
	o.Set(kind.ValueKey(), null)
	if d.showChanges && a.Value != nil {
		if k, v, ok := d.previous(a); ok {
			o.Set(k, v)
		}
	}
	if a.DatasetID != "" {
		o.Set("datasetId", a.DatasetID)
	}
	if d.opts.SysAttrs {
		setSysTimes(&o, a.CreatedAt, a.ModifiedAt)
		if !d.c.At.IsZero() {
			o.Set("deletedAt", ngsild.FormatTime(d.c.At))
		}
	}
	return o
}

// nullValue is the NGSI-LD Null in the value member of a kind.
func nullValue(k ngsild.Kind) any {
	switch k {
	case ngsild.LanguageProperty:
		return map[string]any{"@none": ngsild.NullURI}
	case ngsild.ListProperty, ngsild.ListRelationship:
		return []any{ngsild.NullURI}
	}
	return ngsild.NullURI
}

// addPrevious adds the previous values of the updated attributes to the
// rendered (normalized) entity.
func (d *dataBuilder) addPrevious(obj ngsild.Object) {
	if d.c.Before == nil {
		return
	}
	for _, a := range d.c.Attrs {
		if a.Kind != store.AttrUpdated {
			continue
		}
		key := d.opts.Compact.CompactIRI(a.Name)
		for i := range obj {
			if obj[i].Key != key {
				continue
			}
			switch v := obj[i].Value.(type) {
			case ngsild.Object:
				obj[i].Value = d.withPrevious(a.Name, v)
			case []any:
				for j, x := range v {
					if inst, ok := x.(ngsild.Object); ok {
						v[j] = d.withPrevious(a.Name, inst)
					}
				}
			}
		}
	}
}

// withPrevious adds the previous value to one rendered instance, found in
// Before by its datasetId. An instance the op did not write is left alone:
// entities are copy-on-write, so a written instance is a new value.
func (d *dataBuilder) withPrevious(name string, inst ngsild.Object) ngsild.Object {
	ds, _ := inst.Get("datasetId")
	dsID, _ := ds.(string)
	b := d.c.Before.Instance(name, dsID)
	if b == nil || b == d.c.After.Instance(name, dsID) {
		return inst // a new instance, or one the op did not write
	}
	if k, v, ok := d.previous(b); ok {
		inst.Set(k, v)
	}
	return inst
}

// previous renders an instance's value as it was, and names the member that
// carries it: "previous" and the kind's value member (previousValue,
// previousObject, previousLanguageMap...).
func (d *dataBuilder) previous(a *ngsild.Attribute) (string, any, bool) {
	opts := d.opts
	opts.Format, opts.SysAttrs, opts.Attrs = ngsild.Normalized, false, nil
	r, ok := ngsild.RenderAttribute([]*ngsild.Attribute{a}, opts).(ngsild.Object)
	if !ok {
		return "", nil, false
	}
	typ, _ := r.Get("type")
	kind, _ := typ.(string)
	key := ngsild.Kind(kind).ValueKey()
	v, ok := r.Get(key)
	if !ok {
		return "", nil, false
	}
	return "previous" + string(key[0]-'a'+'A') + key[1:], v, true
}

// defaultFirst orders instances as ngsild.Render does: the default instance,
// then by datasetId.
func defaultFirst(insts []*ngsild.Attribute) []*ngsild.Attribute {
	s := append([]*ngsild.Attribute(nil), insts...)
	sort.SliceStable(s, func(i, j int) bool {
		if s[i].DatasetID == "" || s[j].DatasetID == "" {
			return s[i].DatasetID == ""
		}
		return s[i].DatasetID < s[j].DatasetID
	})
	return s
}

// setSysTimes adds createdAt and modifiedAt, those that are known.
func setSysTimes(o *ngsild.Object, created, modified time.Time) {
	if !created.IsZero() {
		o.Set("createdAt", ngsild.FormatTime(created))
	}
	if !modified.IsZero() {
		o.Set("modifiedAt", ngsild.FormatTime(modified))
	}
}
