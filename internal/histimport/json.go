package histimport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/geo"
)

// The JSON format: NGSI-LD temporal entities (one, an array of them, or
// several one after the other), each attribute either an array of
// instances with their observedAt (the normalized temporal representation)
// or {"type": "Property", "values": [[value, time], ...]} (temporalValues).
//
// The file is read token by token (encoding/json's Decoder), so its size
// does not matter; what is held in memory is one attribute instance at a
// time, the pairs of one temporalValues attribute, and the instances of an
// entity until its id, type and @context are known (an entity may list
// them after its attributes, as NGSI-LD examples do with @context). An
// entity with more than maxPending instances is imported with the @context
// known by then.

// maxPending bounds the instances of an entity held back until the entity
// ends.
const maxPending = 20_000

// contextResolver resolves an entity's @context member.
type contextResolver interface {
	Resolve(ctx context.Context, raw any) (*jsonld.Context, error)
}

type jsonSource struct {
	ctx      context.Context
	dec      *json.Decoder
	names    *names
	def      expander        // the default @context (core or --context)
	resolver contextResolver // for @context members; nil: they are an error
	k        *sink
	recorded time.Time // the instances' modifiedAt
	seq      int64     // instances read (the position resumes count)
	entities int       // entities read
}

// jent is the entity being read.
type jent struct {
	n         int // its position in the file, from 1
	id        string
	types     []string // as written (short)
	hasCtx    bool
	ctx       expander
	pending   []pendingInst
	streaming bool            // pending was flushed early: instances go straight on
	used      map[string]bool // short names expanded while streaming
	e         *entity
	expTypes  []string
	err       string // why the entity's instances are all rejected
}

// pendingInst is one instance read but not yet imported.
type pendingInst struct {
	seq   int64
	name  string // as written
	index int    // its position within the attribute, from 1
	raw   map[string]any
	pair  *pair // temporalValues: raw is the attribute's shared members
	err   error // rejected while reading
}

type pair struct {
	value any
	time  string
}

func newJSONSource(ctx context.Context, r io.Reader, n *names, def expander, res contextResolver, recorded time.Time) *jsonSource {
	return &jsonSource{ctx: ctx, dec: json.NewDecoder(r), names: n, def: def, resolver: res, recorded: recorded}
}

// syntax wraps a decoding error with where it happened.
func (s *jsonSource) syntax(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("JSON at byte %d (after %d entities): %w", s.dec.InputOffset(), s.entities, err)
}

func (s *jsonSource) run(k *sink) error {
	s.k = k
	top := 0
	for {
		tok, err := s.dec.Token()
		if errors.Is(err, io.EOF) {
			if top == 0 {
				return errors.New("the file is empty: expected a temporal entity or an array of them")
			}
			return k.finish(s.position())
		}
		if err != nil {
			return s.syntax(err)
		}
		top++
		switch tok {
		case json.Delim('['):
			for s.dec.More() {
				if err := s.expect('{', "an array of temporal entities"); err != nil {
					return err
				}
				if err := s.entity(); err != nil {
					return err
				}
			}
			if _, err := s.dec.Token(); err != nil {
				return s.syntax(err)
			}
		case json.Delim('{'):
			if err := s.entity(); err != nil {
				return err
			}
		default:
			return s.syntax(fmt.Errorf("expected a temporal entity (an object) or an array of them, found %v", tok))
		}
	}
}

func (s *jsonSource) expect(d json.Delim, what string) error {
	tok, err := s.dec.Token()
	if err != nil {
		return s.syntax(err)
	}
	if tok != d {
		return s.syntax(fmt.Errorf("expected %s, found %v", what, tokenString(tok)))
	}
	return nil
}

func tokenString(tok json.Token) string {
	switch x := tok.(type) {
	case json.Delim:
		return string(x)
	case string:
		return quote(x)
	}
	return fmt.Sprint(tok)
}

// at is the position after instance seq, emitted now (instances are
// emitted in order, possibly after more of the file was read).
func (s *jsonSource) at(seq int64) Position {
	return Position{Offset: s.dec.InputOffset(), Line: seq}
}

func (s *jsonSource) position() Position {
	return Position{Offset: s.dec.InputOffset(), Line: s.seq}
}

// entity reads one temporal entity, its '{' read.
func (s *jsonSource) entity() error {
	s.entities++
	je := &jent{n: s.entities, ctx: s.def}
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return s.syntax(err)
		}
		key, _ := tok.(string)
		switch key {
		case "id", "@id":
			var v any
			if err := s.dec.Decode(&v); err != nil {
				return s.syntax(err)
			}
			id, ok := v.(string)
			switch {
			case !ok:
				je.err = "the entity id is not a string"
			case ngsild.ValidURI(id) != nil:
				je.err = "the entity id " + quote(id) + " is not a URI"
			}
			je.id = id
		case "type", "@type":
			var v any
			if err := s.dec.Decode(&v); err != nil {
				return s.syntax(err)
			}
			je.types = je.types[:0]
			switch x := v.(type) {
			case string:
				je.types = append(je.types, x)
			case []any:
				for _, t := range x {
					if ts, ok := t.(string); ok {
						je.types = append(je.types, ts)
					} else {
						je.err = "the entity type must be a string or a list of strings"
					}
				}
			default:
				je.err = "the entity type must be a string or a list of strings"
			}
		case "@context":
			var v any
			if err := s.dec.Decode(&v); err != nil {
				return s.syntax(err)
			}
			if err := s.setContext(je, v); err != nil {
				return err
			}
		case "scope", "createdAt", "modifiedAt", "deletedAt":
			var v json.RawMessage
			if err := s.dec.Decode(&v); err != nil {
				return s.syntax(err)
			}
		default:
			if err := s.attribute(je, key); err != nil {
				return err
			}
		}
	}
	if _, err := s.dec.Token(); err != nil { // '}'
		return s.syntax(err)
	}
	return s.flush(je)
}

// setContext applies an entity's @context member.
func (s *jsonSource) setContext(je *jent, raw any) error {
	if s.resolver == nil {
		je.err = "the entity has an @context member, which this import cannot resolve"
		return nil
	}
	c, err := s.resolver.Resolve(s.ctx, raw)
	if err != nil {
		je.err = "the entity's @context: " + err.Error()
		return nil
	}
	if je.streaming {
		for _, t := range je.types {
			je.used[t] = true
		}
		for short := range je.used {
			if c.ExpandTerm(short) != je.ctx.ExpandTerm(short) {
				return fmt.Errorf("entity %d (%s): its @context comes after more than %d instances, which were imported with the default @context, and names %s differently: put @context before the attributes, or pass --context",
					je.n, je.id, maxPending, short)
			}
		}
	}
	je.ctx, je.hasCtx = c, true
	return nil
}

// attribute reads the instances of one attribute.
func (s *jsonSource) attribute(je *jent, name string) error {
	tok, err := s.dec.Token()
	if err != nil {
		return s.syntax(err)
	}
	switch tok {
	case json.Delim('['):
		for i := 1; s.dec.More(); i++ {
			var v any
			if err := s.dec.Decode(&v); err != nil {
				return s.syntax(err)
			}
			p := pendingInst{seq: s.next(), name: name, index: i}
			if m, ok := v.(map[string]any); ok {
				p.raw = m
			} else {
				p.err = rowError("an instance is not an attribute object with observedAt")
			}
			if err := s.add(je, p); err != nil {
				return err
			}
		}
		if _, err := s.dec.Token(); err != nil {
			return s.syntax(err)
		}
		return nil
	case json.Delim('{'):
		return s.attributeObject(je, name)
	}
	// A concise value has no time.
	if tok == json.Delim(']') || tok == json.Delim('}') {
		return s.syntax(fmt.Errorf("unexpected %v", tok))
	}
	return s.add(je, pendingInst{seq: s.next(), name: name, index: 1,
		err: rowError("the attribute is a bare value: give its instances, each with observedAt, or temporalValues pairs")})
}

// attributeObject reads an attribute given as one object: one instance, or
// the temporalValues form whose pairs it streams.
func (s *jsonSource) attributeObject(je *jent, name string) error {
	m := map[string]any{}
	var pairs []pendingInst
	seenPairs := false
	for s.dec.More() {
		tok, err := s.dec.Token()
		if err != nil {
			return s.syntax(err)
		}
		key, _ := tok.(string)
		if !isPairsMember(key) {
			var v any
			if err := s.dec.Decode(&v); err != nil {
				return s.syntax(err)
			}
			m[key] = v
			continue
		}
		seenPairs = true
		if err := s.expect('[', "an array of [value, time] pairs in "+key); err != nil {
			return err
		}
		for i := 1; s.dec.More(); i++ {
			var v any
			if err := s.dec.Decode(&v); err != nil {
				return s.syntax(err)
			}
			p := pendingInst{seq: s.next(), name: name, index: i}
			arr, ok := v.([]any)
			if ok && len(arr) == 2 {
				if t, ok := arr[1].(string); ok {
					p.pair = &pair{value: arr[0], time: t}
				}
			}
			if p.pair == nil {
				p.err = rowError("a pair of " + key + " is not [value, \"time\"]")
			}
			pairs = append(pairs, p)
		}
		if _, err := s.dec.Token(); err != nil {
			return s.syntax(err)
		}
	}
	if _, err := s.dec.Token(); err != nil { // '}'
		return s.syntax(err)
	}
	if !seenPairs {
		return s.add(je, pendingInst{seq: s.next(), name: name, index: 1, raw: m})
	}
	for _, p := range pairs {
		if p.pair != nil {
			p.raw = m
		}
		if err := s.add(je, p); err != nil {
			return err
		}
	}
	return nil
}

// isPairsMember reports whether key holds the pairs of the temporalValues
// representation (4.5.9: values, objects, languageMaps, ...).
func isPairsMember(key string) bool {
	switch key {
	case "values", "objects", "languageMaps", "jsons", "vocabs", "valueLists", "objectLists":
		return true
	}
	return false
}

func (s *jsonSource) next() int64 {
	s.seq++
	return s.seq
}

// add queues an instance of je: held back until je ends, or imported now
// when je is streaming.
func (s *jsonSource) add(je *jent, p pendingInst) error {
	if je.streaming {
		return s.emit(je, &p)
	}
	je.pending = append(je.pending, p)
	if len(je.pending) >= maxPending && je.id != "" && len(je.types) > 0 {
		// Too many to hold: go on with the @context known now.
		if err := s.flush(je); err != nil {
			return err
		}
		je.streaming, je.used = true, map[string]bool{}
	}
	return nil
}

// flush imports je's pending instances.
func (s *jsonSource) flush(je *jent) error {
	for i := range je.pending {
		if err := s.emit(je, &je.pending[i]); err != nil {
			return err
		}
	}
	je.pending = je.pending[:0]
	return nil
}

// emit parses one instance and hands it to the sink (or rejects it).
func (s *jsonSource) emit(je *jent, p *pendingInst) error {
	reject := func(err error) error {
		where := fmt.Sprintf("instance %d (entity %d %s, %s #%d)", p.seq, je.n, je.id, p.name, p.index)
		return s.k.reject(p.seq, where, err, nil, s.at(p.seq))
	}
	if err := s.prepare(je); err != nil {
		return reject(err)
	}
	if p.err != nil {
		return reject(p.err)
	}
	if je.streaming {
		je.used[p.name] = true
	}
	name, a, err := s.instance(je, p)
	if err != nil {
		return reject(err)
	}
	a.CreatedAt, a.ModifiedAt = time.Time{}, s.recorded
	return s.k.add(p.seq, je.e, name, je.expTypes, a, s.at(p.seq))
}

// prepare checks je's id and types once they are final.
func (s *jsonSource) prepare(je *jent) error {
	if je.err != "" {
		return rowError(je.err)
	}
	if je.e != nil {
		return nil
	}
	if je.id == "" {
		return rowError("the entity has no id")
	}
	if len(je.types) == 0 {
		return rowError("the entity has no type")
	}
	for _, t := range je.types {
		iri, problem := expandType(je.ctx, t)
		if problem != "" {
			return rowError(problem)
		}
		je.expTypes = append(je.expTypes, iri)
	}
	je.e = s.names.entity([]byte(je.id))
	if je.e.types == nil {
		je.e.types = je.expTypes
	}
	return nil
}

// instance builds the attribute instance p stands for.
func (s *jsonSource) instance(je *jent, p *pendingInst) (string, *ngsild.Attribute, error) {
	if err := ngsild.ValidAttrName(p.name); err != nil {
		return "", nil, rowError("invalid attribute name " + quote(p.name))
	}
	if isReserved(p.name) {
		return "", nil, rowError(quote(p.name) + " is not an attribute name")
	}
	name := je.ctx.ExpandTerm(p.name)
	if name == "" {
		return "", nil, rowError("the @context maps the attribute " + quote(p.name) + " to null")
	}
	raw := p.raw
	if p.pair != nil {
		if a, ok := simplePair(name, raw, p.pair); ok {
			return name, a, nil
		}
		raw = pairInstance(raw, p.pair)
	}
	if _, ok := raw["observedAt"]; !ok {
		return "", nil, rowError("the instance has no observedAt: every instance imported into history needs its time")
	}
	insts, err := ngsild.ParseAttribute(name, raw, je.ctx, parseOpts)
	if err != nil {
		return "", nil, rowError(detail(err))
	}
	if len(insts) != 1 {
		return "", nil, rowError("expected one attribute instance")
	}
	if insts[0].ObservedAt.IsZero() {
		return "", nil, errZeroTime
	}
	return name, insts[0], nil
}

var parseOpts = ngsild.ParseOptions{ValidateGeometry: func(v any) error {
	_, err := geo.ParseGeometry(v)
	return err
}}

// simplePair builds the instance of a temporalValues pair of a Property
// with a plain value and no other metadata than unitCode and datasetId,
// without going through the general parser.
func simplePair(name string, m map[string]any, p *pair) (*ngsild.Attribute, bool) {
	if ngsild.IsGeoName(name) {
		return nil, false
	}
	a := &ngsild.Attribute{Kind: ngsild.Property}
	for k, v := range m {
		switch k {
		case "type":
			if v != "Property" {
				return nil, false
			}
		case "unitCode":
			s, ok := v.(string)
			if !ok || s == "" {
				return nil, false
			}
			a.UnitCode = s
		case "datasetId":
			s, ok := v.(string)
			if !ok || ngsild.ValidURI(s) != nil {
				return nil, false
			}
			a.DatasetID = s
		default:
			return nil, false
		}
	}
	switch p.value.(type) {
	case float64, string, bool:
	default:
		return nil, false
	}
	t, ok := parseTime([]byte(p.time))
	if !ok || t.IsZero() {
		return nil, false
	}
	a.Value, a.ObservedAt = p.value, t
	return a, true
}

// pairInstance is the normalized instance a temporalValues pair stands for.
func pairInstance(m map[string]any, p *pair) map[string]any {
	out := make(map[string]any, len(m)+2)
	for k, v := range m {
		out[k] = v
	}
	kind := ngsild.Property
	if t, ok := m["type"].(string); ok && ngsild.Kind(t).Valid() {
		kind = ngsild.Kind(t)
	}
	v := p.value
	switch kind {
	case ngsild.LanguageProperty, ngsild.JsonProperty, ngsild.VocabProperty:
		// 4.5.9 writes these values as {"languageMap": ...} and so on.
		if obj, ok := v.(map[string]any); ok {
			if inner, ok := obj[kind.ValueKey()]; ok && len(obj) == 1 {
				v = inner
			}
		}
	}
	out["type"] = string(kind)
	out[kind.ValueKey()] = v
	out["observedAt"] = p.time
	return out
}
