package store

import "context"

// Records holds small documents that are not city context and so stay out
// of entities (ARCHITECTURE.md): device registrations and their dead
// letters, alarm rules and their state, and later accounts and keys. The
// store treats documents as opaque bytes; each module owns the meaning of
// its kinds. Records are not versioned, not in history and not on the bus
// (no change in the change log); they are not entities, so no query finds
// them and a record alone does not make its tenant exist (Tenants). Kinds
// and tenants are separate namespaces: the same id may be stored under
// several kinds and tenants.
//
// Records are meant for rare, small writes (a registration, a rule): each
// call is one statement, durable when it returns nil, like a Write.
type Records interface {
	// PutRecord creates or replaces the record (kind, tenant, id). A
	// record in a tenant that has no entity yet is kept all the same. An
	// empty (or nil) doc is stored, and read back, as an empty document.
	PutRecord(ctx context.Context, kind, tenant, id string, doc []byte) error
	// PutRecords creates or replaces several records in one transaction:
	// all of them are stored, or none (for modules that save many small
	// states at once, such as alarm rules).
	PutRecords(ctx context.Context, recs []Record) error
	// GetRecord returns the document of a record, ErrNotFound if there is
	// none. The slice is the caller's.
	GetRecord(ctx context.Context, kind, tenant, id string) ([]byte, error)
	// DeleteRecord deletes a record; ErrNotFound if there is none.
	DeleteRecord(ctx context.Context, kind, tenant, id string) error
	// ListRecords returns the records of a kind, of one tenant, or of every
	// tenant when allTenants (tenant is then ignored), sorted by tenant
	// then id (byte order); none is an empty list, not an error.
	ListRecords(ctx context.Context, kind, tenant string, allTenants bool) ([]Record, error)
}

// Record is one stored record.
type Record struct {
	Kind, Tenant, ID string
	Doc              []byte
}
