// Package auth decides who may do what: accounts, roles, API keys, public
// tenants, and the audit log of what was done. It is a Go API; the HTTP
// middleware, the admin API and the CLI are built on it.
//
// # Rights
//
// A Grant gives a Role on a tenant, or on every tenant (AllTenants, the
// platform administrators' grant). Each role is a set of Permissions
// (rolePermissions): admin everything; operator devices, rules and alerts;
// editor writes entities, of every type or of the types its grant lists;
// office writes initiatives and KPIs (OfficeTypes); steward the DCAT-AP
// catalogue (CatalogueTypes); viewer reads. Every role may read, stream and
// subscribe on its tenant. A route asks Principal.Can(tenant, permission,
// types); rights are the union of the principal's grants, a grant on one
// tenant gives nothing on another, and a public-read tenant may be read
// and streamed by anyone, anonymous included.
//
// # Identities
//
// Users are local accounts (names, argon2id password hashes in the PHC
// string format, grants, a disabled flag); an account without a password
// is a service account that acts only through its keys. Login checks a
// password with a lock-out per account (5 failures in 15 minutes lock it
// for 15 minutes, counted in the store so that every instance sees them)
// and a rate limit per remote address (golang.org/x/time/rate).
//
// An API key ("zk_<id>_<secret>") belongs to a user and carries a subset
// of the user's grants, checked when it is created; its rights are always
// within its owner's current grants, so demoting or disabling a user
// demotes or disables their keys. Only SHA-256 of the secret is stored.
// Keys and accounts are cached in memory, so that authenticating a key
// costs about 250 ns and reads no storage; the cache is read again
// from the store every few seconds, so a key revoked on another instance
// is refused within seconds, and at once on the instance that revoked it.
//
// Authenticate reads a request's Authorization header: a Bearer API key,
// Basic user and password (for scripts), or nothing (anonymous).
// Bootstrap gives a new installation its first administrator, from the
// environment or with a one-time setup token.
//
// # Audit
//
// AuditLog records Entries (who, from where, what, when, the outcome) in
// batches, in the store's records, and answers queries and exports. An
// entry never holds a secret: credentials are stripped from paths, and
// nothing else of a request is kept.
//
// # Storage
//
// Everything is kept in store.Records (kinds "auth.*"), so it works on
// both backends and `zenne migrate` copies it. Records have no
// compare-and-swap: two instances changing the same account at the same
// moment keep the last change. Keys' last-use times and failed logins are
// records of their own, so writing them never undoes a revocation or an
// account change.
package auth
