package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the driver the embedded store uses

	"github.com/zenne-city/zenne/bench/internal/benchutil"
)

// noopLimit measures the request rate of a no-op net/http handler with the
// same client, concurrency and request (an API key included) as the PATCH
// scenario: the most any handler can do on this machine with this client.
func noopLimit(ctx context.Context, cfg *config) (*stats, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	client := benchutil.WithKey(benchutil.NewClient(cfg.concurrency), benchutil.AdminKey())
	defer client.CloseIdleConnections()
	return patchScenario(ctx, cfg, client, "http://"+ln.Addr().String()), nil
}

// sqliteLimit measures the raw insert rate of modernc.org/sqlite on this disk:
// rows shaped like the store's entity rows (integer key, unique text id, the
// JSON document), in one transaction, in WAL mode, in the directory the
// benchmark keeps its data in.
func sqliteLimit(ctx context.Context, dir string, rows int) (float64, error) {
	path := filepath.Join(dir, "raw.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE e (eid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, doc BLOB NOT NULL)`); err != nil {
		return 0, fmt.Errorf("raw sqlite: %w", err)
	}
	docs := make([][]byte, 1000)
	for i := range docs {
		docs[i] = benchutil.AppendEntity(nil, i)
	}
	start := time.Now()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO e (id, doc) VALUES (?, ?)`)
	if err != nil {
		return 0, err
	}
	for i := range rows {
		if _, err := stmt.ExecContext(ctx, benchutil.EntityID(i), docs[i%len(docs)]); err != nil {
			return 0, fmt.Errorf("raw sqlite insert: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return float64(rows) / time.Since(start).Seconds(), nil
}
