package postgres

import (
	"testing"

	"github.com/zenne-city/zenne/internal/store/postgres/pgtest"
)

// testDatabase creates a fresh database for one test (see pgtest.Database).
func testDatabase(t testing.TB) string { return pgtest.Database(t) }
