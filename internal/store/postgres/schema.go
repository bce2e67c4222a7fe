package postgres

// coreMigrations create the entity store's tables: tenants, entities, the
// change log, contexts, subscriptions and their queue. Never edit a released
// migration: add one.
var coreMigrations = []migration{
	{1, `
CREATE TABLE tenants (
	tid  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE
);
INSERT INTO tenants (name) VALUES ('');
`},
}
