// Package pgtest gives tests a fresh PostgreSQL database of their own.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The tests use the machine's PostgreSQL: ZENNE_TEST_POSTGRES is the URL of
// a database the tests may create other databases from (CI sets it to
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable). Without it they
// are skipped.

// Database creates a fresh database for one test, dropped when the test
// ends, and returns its URL.
func Database(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("ZENNE_TEST_POSTGRES")
	if admin == "" {
		t.Skip("ZENNE_TEST_POSTGRES is not set: no PostgreSQL to test against")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to ZENNE_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "zenne_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("creating a test database: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("dropping %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("ZENNE_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
