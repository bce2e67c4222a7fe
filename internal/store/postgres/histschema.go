package postgres

// histMigrations create the history store's tables (versions 100-199).
// Never edit a released migration: add one.
var histMigrations = []migration{}
