package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/jackc/pgx/v5"
	"io"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // to read the store's sizes

	"github.com/zenne-city/zenne/internal/app"
	"github.com/zenne-city/zenne/internal/histimport"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
)

type rated struct {
	rows int64
	d    time.Duration
}

func (r rated) rate() float64 { return float64(r.rows) / r.d.Seconds() }

// nullStore takes every batch and stores nothing: the import's speed with
// it is the parser's (and the pipeline's).
type nullStore struct {
	take func(recs []store.ImportRecord) error
}

func (n nullStore) ImportHistory(_ context.Context, _ string, recs []store.ImportRecord) error {
	if n.take != nil {
		return n.take(recs)
	}
	return nil
}

func (nullStore) EntityHistory(context.Context, string, string, []string, *temporal.Query) (*temporal.Entity, error) {
	return nil, store.ErrNotFound
}

func (nullStore) Write(_ context.Context, _ string, ops []store.Op) ([]store.Result, error) {
	res := make([]store.Result, len(ops))
	for i := range ops {
		res[i].ID = ops[i].ID
	}
	return res, nil
}

func (c *config) options(storeID string) histimport.Options {
	return histimport.Options{Batch: c.batch, Restart: true, StoreID: storeID}
}

// parseLimit imports the file into a store that stores nothing.
func parseLimit(ctx context.Context, csv string, cfg *config) (rated, error) {
	sum, err := histimport.Import(ctx, nullStore{}, csv, cfg.options("null"))
	if err != nil {
		return rated{}, err
	}
	return rated{sum.ImportedNow, sum.Duration}, nil
}

// storeLimit measures the store alone: the batches of the first rows of
// the file, parsed beforehand, handed to ImportHistory one after the other.
func storeLimit(ctx context.Context, csv, dir string, cfg *config) (rated, error) {
	var batches [][]store.ImportRecord
	var n int
	errEnough := errors.New("enough")
	take := func(recs []store.ImportRecord) error {
		// The import reuses its batches: copy.
		cp := make([]store.ImportRecord, len(recs))
		attrs := make([]ngsild.Attribute, len(recs))
		for i, r := range recs {
			attrs[i] = *r.Attr
			r.Attr = &attrs[i]
			cp[i] = r
		}
		batches = append(batches, cp)
		if n += len(recs); n >= cfg.storeRows {
			return errEnough
		}
		return nil
	}
	if _, err := histimport.Import(ctx, nullStore{take}, csv, cfg.options("null")); err != nil && !errors.Is(err, errEnough) {
		return rated{}, err
	}
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	if err := app.EnsureDir(dir); err != nil {
		return rated{}, err
	}
	st, err := app.OpenStore(ctx, app.Config{DataDir: dir, Log: discardLog()}, nil)
	if err != nil {
		return rated{}, err
	}
	defer st.Close()
	imp := st.(store.HistoryImporter)
	t := time.Now()
	for _, b := range batches {
		if err := imp.ImportHistory(ctx, "", b); err != nil {
			return rated{}, err
		}
	}
	return rated{int64(n), time.Since(t)}, nil
}

type importResult struct {
	rated
	created int
}

// importFile runs the import as `zenne import history --data dir csv` does.
func importFile(ctx context.Context, csv, data string, cfg *config, out io.Writer) (importResult, error) {
	st, err := app.OpenStore(ctx, app.Config{DataDir: data, StoreURL: cfg.storeURL, Log: discardLog()}, nil)
	if err != nil {
		return importResult{}, err
	}
	hs, ok := st.(histimport.Store)
	if !ok {
		st.Close()
		return importResult{}, errors.New("the store cannot import history")
	}
	storeID := cfg.storeURL
	if storeID == "" {
		storeID = "sqlite://" + filepath.Join(data, "zenne.db")
	}
	opts := cfg.options(storeID)
	last := time.Now()
	opts.Progress = func(p histimport.Progress) {
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			fmt.Fprintf(out, "       %5.1f%%  %d rows, %.0f rows/s\n", 100*float64(p.Bytes)/float64(p.Size), p.Rows, float64(p.RowsNow)/p.Elapsed.Seconds())
		}
	}
	sum, err := histimport.Import(ctx, hs, csv, opts)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return importResult{}, err
	}
	if !cfg.keep {
		os.Remove(csv + ".import-state")
	}
	return importResult{rated{sum.ImportedNow, sum.Duration}, sum.EntitiesCreated}, nil
}

type sizes struct {
	chunks, samples       int64
	chunkBytes, fileBytes int64
}

// storeSize reads the history's size from the database file (the store is
// closed), or from the PostgreSQL database at storeURL.
func storeSize(ctx context.Context, data, storeURL string) (sizes, error) {
	var s sizes
	if storeURL != "" {
		conn, err := pgx.Connect(ctx, storeURL)
		if err != nil {
			return s, err
		}
		defer conn.Close(ctx)
		err = conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(n), 0), coalesce(sum(length(data)), 0), pg_database_size(current_database()) FROM h_chunks`).
			Scan(&s.chunks, &s.samples, &s.chunkBytes, &s.fileBytes)
		return s, err
	}
	path := filepath.Join(data, "zenne.db")
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return s, err
	}
	defer db.Close()
	err = db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(n), 0), coalesce(sum(length(data)), 0) FROM h_chunks`).
		Scan(&s.chunks, &s.samples, &s.chunkBytes)
	if err != nil {
		return s, err
	}
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(path + suffix); err == nil {
			s.fileBytes += fi.Size()
		}
	}
	return s, nil
}
