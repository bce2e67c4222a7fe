// Package qlang parses and evaluates the NGSI-LD query languages: q (5.5.4 of
// ETSI GS CIM 009), scopeQ (4.19) and entity type expressions (4.17).
//
// CONTRACT (implemented by the qlang work package; signatures are fixed):
//
//	func ParseQ(s string, expand func(term string) string) (*Query, error)
//	func (q *Query) Match(e *ngsild.Entity) bool
//	func (q *Query) ValueAttrs() (attrs []string, ok bool) // the attributes q reads; ok if only their values
//	func (q *Query) String() string
//
//	func ParseScopeQ(s string) (*ScopeQuery, error)
//	func (q *ScopeQuery) Match(scopes []string) bool
//
//	func ParseTypeQuery(s string, expand func(term string) string) (*TypeQuery, error)
//	func (t *TypeQuery) Match(types []string) bool
//	func (t *TypeQuery) AnyOf() []string     // if the expression is a plain OR of types (a, a,b, a|b), those types; else nil
//
// Parse errors are *ngsild.Error of type BadRequestData, with a detail that
// points at the offending position.
package qlang
