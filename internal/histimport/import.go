// Package histimport imports attribute history in bulk (zenne import
// history): it reads a CSV file or NGSI-LD temporal JSON, and hands the
// instances to the store's HistoryImporter in batches, each one store
// transaction, then gives entities that have no current state one built
// from their latest instances.
//
// Reading and storing overlap: a goroutine parses batch n+1 while batch n
// commits. After each committed batch the position reached is written to
// FILE.import-state, so an interrupted import resumes there; the store skips
// instances it already holds, so the batch that was committing when the
// import stopped is harmless to do again. Rows that cannot be imported are
// reported with their line (CSV) or instance number (JSON) and written to
// FILE.rejected.
package histimport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
)

// Store is what the import needs from the store.
type Store interface {
	store.HistoryImporter
	Write(ctx context.Context, tenant string, ops []store.Op) ([]store.Result, error)
	// EntityHistory tells whether the store still holds what an earlier
	// run imported (see store.History).
	EntityHistory(ctx context.Context, tenant, id string, attrs []string, q *temporal.Query) (*temporal.Entity, error)
}

// Options configure an import. The zero value imports into the default
// tenant with the core @context.
type Options struct {
	Tenant string
	// Context expands short attribute names and types; nil is the NGSI-LD
	// core context (a Smart Data Models context for its names).
	Context *jsonld.Context
	// Resolver resolves @context members of JSON entities; nil rejects
	// entities that have one.
	Resolver *jsonld.Resolver
	// Format is "csv" or "json"; "" chooses by the file's extension.
	Format string
	// Batch is the number of rows per store transaction (default 100,000).
	Batch int
	// Restart ignores the state of an earlier, interrupted import.
	Restart bool
	// StoreID names the store (its file or URL): the resume state of one
	// store does not apply to another.
	StoreID string
	// Progress is called after every committed batch.
	Progress func(Progress)
	// Notice receives messages for the user (resuming, starting over).
	Notice func(msg string)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Progress is where an import is.
type Progress struct {
	Bytes, Size    int64 // of the file: done, total
	Rows, Rejected int64 // rows imported and rejected so far (earlier runs included)
	RowsNow        int64 // rows imported by this run
	Resuming       bool  // still re-reading what an earlier run imported
	Elapsed        time.Duration
	Line           int64 // CSV: lines done; JSON: instances done
}

// Reject is a row that was not imported.
type Reject struct {
	Pos   int64  // its line (CSV) or instance number (JSON)
	Where string // "line 17" or "instance 17 (entity 3 urn:…, temperature #5)"
	Msg   string
	Text  string // the row as read (CSV)
}

func (r Reject) String() string {
	if r.Text == "" {
		return r.Where + ": " + r.Msg
	}
	return r.Where + ": " + r.Msg + ": " + r.Text
}

// Summary is the outcome of an import.
type Summary struct {
	File, Format    string
	Size            int64
	Imported        int64 // rows imported (earlier runs of a resumed import included)
	ImportedNow     int64 // by this run
	Rejected        int64 // rows rejected (earlier runs included)
	FirstRejects    []Reject
	RejectedFile    string // "" when no row was rejected
	Entities        int    // entities in the file
	EntitiesCreated int    // given a current state by this run
	Resumed         bool   // this run went on from an interrupted one
	AlreadyDone     bool   // the file had been imported completely: nothing done
	Duration        time.Duration
}

// Rate is this run's rows per second.
func (s *Summary) Rate() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.ImportedNow) / s.Duration.Seconds()
}

// Position is a point in the file.
type Position struct {
	Offset int64 `json:"offset"` // bytes read
	Line   int64 `json:"line"`   // CSV: lines read; JSON: attribute instances read
}

// ErrAllRejected stops an import whose first rows are all rejected: the
// file is probably not what the import expects.
var ErrAllRejected = errors.New("every row was rejected")

const (
	// DefaultBatch rows make one store transaction: large enough that a
	// day's chunk of a series is written about once, small enough to keep a
	// commit short and the memory small.
	DefaultBatch = 100_000
	maxListed    = 20 // rejects listed in the summary
	giveUpAfter  = 1000
)

// batch is one store transaction's worth of rows, passed from the parser
// to the committer and back.
type batch struct {
	size    int
	rows    int // rows read into it (imported, rejected or skipped)
	recs    []store.ImportRecord
	attrs   []ngsild.Attribute // the CSV parser's instances, reused
	rejects []Reject
	end     Position
	last    bool
}

func (b *batch) reset() {
	b.rows, b.recs, b.rejects, b.last = 0, b.recs[:0], b.rejects[:0], false
}

func (b *batch) reject(pos int64, where string, err error, text []byte) {
	r := Reject{Pos: pos, Where: where, Msg: detail(err)}
	if text != nil {
		if len(text) > 300 {
			r.Text = string(text[:300]) + "…"
		} else {
			r.Text = string(text)
		}
	}
	b.rejects = append(b.rejects, r)
}

// sink hands full batches from the parser to the committer.
type sink struct {
	ctx  context.Context
	free <-chan *batch
	full chan<- *batch
	cur  *batch
	skip int64 // rows at positions up to skip were imported by an earlier run
}

func (k *sink) take() error {
	select {
	case b := <-k.free:
		b.reset()
		k.cur = b
		return nil
	case <-k.ctx.Done():
		return k.ctx.Err()
	}
}

// send passes the current batch on and takes an empty one.
func (k *sink) send() error {
	select {
	case k.full <- k.cur:
	case <-k.ctx.Done():
		return k.ctx.Err()
	}
	return k.take()
}

// finish sends the last batch.
func (k *sink) finish(end Position) error {
	k.cur.end, k.cur.last = end, true
	select {
	case k.full <- k.cur:
		return nil
	case <-k.ctx.Done():
		return k.ctx.Err()
	}
}

// add adds one instance (JSON).
func (k *sink) add(seq int64, e *entity, name string, types []string, a *ngsild.Attribute, end Position) error {
	e.observe(name, a)
	if seq > k.skip {
		k.cur.recs = append(k.cur.recs, store.ImportRecord{EntityID: e.id, Types: types, Name: name, Attr: a})
	}
	return k.counted(end)
}

// reject rejects one instance (JSON).
func (k *sink) reject(seq int64, where string, err error, text []byte, end Position) error {
	if seq > k.skip {
		k.cur.reject(seq, where, err, text)
	}
	return k.counted(end)
}

// counted counts one row (JSON) ending at end, and passes the batch on
// when it is full.
func (k *sink) counted(end Position) error {
	b := k.cur
	b.rows++
	b.end = end
	if b.rows >= b.size {
		return k.send()
	}
	return nil
}

// source is a file format's reader.
type source interface {
	run(k *sink) error
}

func (s *csvSource) run(k *sink) error {
	for {
		done, err := s.fill(k.cur, k.skip)
		if err != nil {
			return err
		}
		if done {
			return k.finish(k.cur.end)
		}
		if err := k.send(); err != nil {
			return err
		}
	}
}

// ensureAttrs makes sure b has room for the CSV parser's instances.
func (b *batch) ensureAttrs() {
	if len(b.attrs) < b.size {
		b.attrs = make([]ngsild.Attribute, b.size)
	}
	if cap(b.recs) < b.size {
		b.recs = make([]store.ImportRecord, 0, b.size)
	}
}

// Import imports the history in the file at path into st.
func Import(ctx context.Context, st Store, path string, opts Options) (*Summary, error) {
	start := time.Now()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	notice := opts.Notice
	if notice == nil {
		notice = func(string) {}
	}
	var def expander = opts.Context
	if opts.Context == nil {
		def = jsonld.NewResolver(jsonld.Options{}).Core()
		if opts.Resolver != nil {
			def = opts.Resolver.Core()
		}
	}
	format, err := formatOf(path, opts.Format)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory: give the file to import", path)
	}
	sum := &Summary{File: path, Format: format, Size: fi.Size()}

	// Resume where an earlier run stopped, if it was this very file.
	cur := importState{Version: stateVersion, File: absPath(path), Size: fi.Size(), ModTime: fi.ModTime().UTC(),
		Format: format, Tenant: opts.Tenant, Store: opts.StoreID}
	statePath := path + ".import-state"
	if !opts.Restart {
		done, err := resume(ctx, st, statePath, &cur, opts.Tenant, notice)
		if err != nil {
			return nil, err
		}
		if done != nil {
			sum.AlreadyDone, sum.Imported, sum.Rejected = true, done.Imported, done.Rejected
			if done.Rejected > 0 {
				sum.RejectedFile = path + ".rejected"
			}
			return sum, nil
		}
		sum.Resumed = cur.Line > 0
	}
	rej, err := openRejected(path+".rejected", sum.Resumed, cur.RejectedBytes)
	if err != nil {
		return nil, err
	}
	defer rej.close()
	if cur.Rejected > 0 {
		sum.RejectedFile = rej.path
	}
	// The state file must be writable before anything is imported.
	if err := writeState(statePath, &cur); err != nil {
		return nil, fmt.Errorf("write the resume state: %w (copy the file to a directory you can write to)", err)
	}

	// Every instance gets the same modifiedAt (when it was recorded): the
	// store keeps it beside each sample, and one value for all of them
	// compresses to nothing.
	recorded := opts.Now().UTC()
	n := newNames(def)
	var src source
	switch format {
	case "csv":
		cs, err := newCSVSource(f, n, recorded)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		src = cs
	default:
		var res contextResolver
		if opts.Resolver != nil {
			res = opts.Resolver
		}
		src = newJSONSource(ctx, f, n, def, res, recorded)
	}

	// The pipeline: the parser fills batches, the committer stores them;
	// three batches circulate so that neither waits for the other.
	g, gctx := errgroup.WithContext(ctx)
	free := make(chan *batch, 3)
	full := make(chan *batch, 3)
	for range cap(free) {
		b := &batch{size: opts.Batch}
		if format == "csv" {
			b.ensureAttrs()
		}
		free <- b
	}
	k := &sink{ctx: gctx, free: free, full: full, skip: cur.Line}
	var readErr error // a fatal error in the file, after which what was read is still stored
	g.Go(func() error {
		defer close(full)
		if err := k.take(); err != nil {
			return err
		}
		err := src.run(k)
		if err == nil || gctx.Err() != nil {
			return err
		}
		readErr = err
		return k.finish(k.cur.end)
	})
	g.Go(func() error {
		for b := range full {
			if err := commit(gctx, st, opts, b, &cur, sum, rej, statePath, start); err != nil {
				return err
			}
			last := b.last
			free <- b
			if last {
				return nil
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return sum, ctx.Err()
		}
		return sum, fmt.Errorf("%s: %w", path, err)
	}
	if readErr != nil {
		return sum, fmt.Errorf("%s: %w (the %d rows before it were imported)", path, readErr, sum.ImportedNow)
	}

	// Entities without a current state get one.
	sum.Entities = len(n.entities)
	if sum.EntitiesCreated, err = createCurrent(ctx, st, opts.Tenant, n, opts.Now().UTC()); err != nil {
		return sum, fmt.Errorf("give the imported entities a current state: %w", err)
	}
	cur.Complete = true
	if err := writeState(statePath, &cur); err != nil {
		return sum, err
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

// resume sets cur to where an earlier, interrupted import of the same file
// into the same store stopped, if there was one. It returns the earlier
// state if that import was complete.
func resume(ctx context.Context, st Store, statePath string, cur *importState, tenant string, notice func(string)) (*importState, error) {
	old, err := readState(statePath)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		notice(fmt.Sprintf("ignoring %s (%v): starting from the beginning", statePath, err))
	case !old.sameImport(cur):
		notice(fmt.Sprintf("%s is from an import of %s: starting from the beginning", statePath, old.differs(cur)))
	case !holds(ctx, st, tenant, old):
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		notice(fmt.Sprintf("the store does not hold what %s says was imported (%s): starting from the beginning", statePath, old.ProbeID))
	case old.Complete:
		return old, nil
	case old.Line > 0:
		cur.Position, cur.Imported, cur.Rejected, cur.RejectedBytes = old.Position, old.Imported, old.Rejected, old.RejectedBytes
		cur.ProbeID, cur.ProbeAttr = old.ProbeID, old.ProbeAttr
		what := "line"
		if cur.Format == "json" {
			what = "instance"
		}
		notice(fmt.Sprintf("resuming an interrupted import after %s %d (%d rows imported before; --restart starts over)", what, old.Line, old.Imported))
	}
	return nil, nil
}

// commit stores one batch, then records the rejects and the new position.
func commit(ctx context.Context, st Store, opts Options, b *batch, cur *importState, sum *Summary, rej *rejectedFile, statePath string, start time.Time) error {
	resuming := b.end.Line <= cur.Line && !b.last
	if len(b.recs) > 0 {
		if err := st.ImportHistory(ctx, opts.Tenant, b.recs); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	if len(b.rejects) > 0 {
		for _, r := range b.rejects {
			if len(sum.FirstRejects) < maxListed {
				sum.FirstRejects = append(sum.FirstRejects, r)
			}
		}
		if err := rej.write(b.rejects); err != nil {
			return err
		}
		sum.RejectedFile = rej.path
	}
	n := int64(len(b.recs))
	if cur.ProbeID == "" && n > 0 {
		cur.ProbeID, cur.ProbeAttr = b.recs[0].EntityID, b.recs[0].Name
	}
	cur.Imported += n
	cur.Rejected += int64(len(b.rejects))
	sum.ImportedNow += n
	sum.Imported, sum.Rejected = cur.Imported, cur.Rejected
	if advanced := b.end.Line > cur.Line; advanced || b.last {
		if advanced {
			cur.Position = b.end
		}
		cur.RejectedBytes = rej.size
		if err := writeState(statePath, cur); err != nil {
			return err
		}
	}
	if cur.Imported == 0 && cur.Rejected >= giveUpAfter {
		return fmt.Errorf("%w: the first %d rows could not be imported (first: %s); see %s", ErrAllRejected, cur.Rejected, sum.FirstRejects[0], rej.path)
	}
	sum.Duration = time.Since(start)
	if opts.Progress != nil {
		opts.Progress(Progress{Bytes: b.end.Offset, Size: sum.Size, Rows: cur.Imported, Rejected: cur.Rejected,
			RowsNow: sum.ImportedNow, Resuming: resuming, Elapsed: sum.Duration, Line: b.end.Line})
	}
	return nil
}

// holds reports whether the store has the history an earlier run's state
// says it imported (the store may have been replaced since).
func holds(ctx context.Context, st Store, tenant string, s *importState) bool {
	if s.ProbeID == "" {
		return true
	}
	_, err := st.EntityHistory(ctx, tenant, s.ProbeID, []string{s.ProbeAttr}, &temporal.Query{LastN: 1})
	return !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrNoTenant)
}

// formatOf chooses the format from the option or the file's extension.
func formatOf(path, format string) (string, error) {
	switch strings.ToLower(format) {
	case "csv":
		return "csv", nil
	case "json", "jsonld", "json-ld", "ndjson":
		return "json", nil
	case "":
	default:
		return "", fmt.Errorf("unknown format %q: use csv or json", format)
	}
	name := strings.ToLower(path)
	for _, gz := range []string{".gz", ".zst", ".bz2", ".xz", ".zip"} {
		if strings.HasSuffix(name, gz) {
			return "", fmt.Errorf("%s is compressed: decompress it first", path)
		}
	}
	switch filepath.Ext(name) {
	case ".csv":
		return "csv", nil
	case ".json", ".jsonld", ".ndjson", ".jsonl":
		return "json", nil
	}
	return "", fmt.Errorf("cannot tell the format of %s from its name: pass --format csv or --format json", path)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// rejectedFile is FILE.rejected, created with the first reject.
type rejectedFile struct {
	path string
	f    *os.File
	size int64
}

func openRejected(path string, resume bool, size int64) (*rejectedFile, error) {
	r := &rejectedFile{path: path}
	if !resume || size == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return r, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	// Drop what was written after the state the import resumes from.
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	r.f, r.size = f, size
	return r, nil
}

func (r *rejectedFile) write(rs []Reject) error {
	if r.f == nil {
		f, err := os.OpenFile(r.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		r.f = f
	}
	var b strings.Builder
	for _, x := range rs {
		b.WriteString(strings.ReplaceAll(x.String(), "\n", `\n`))
		b.WriteByte('\n')
	}
	n, err := io.WriteString(r.f, b.String())
	r.size += int64(n)
	return err
}

func (r *rejectedFile) close() {
	if r.f != nil {
		r.f.Close()
	}
}
