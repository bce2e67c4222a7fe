package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/zenne-city/zenne/internal/store"
)

// Record kinds of the audit log. The entries a batch writes on one UTC day
// (2006-01-02) are one record, in the "tenant" of that day, not of the
// tenant they concern, so that a day is read, pruned and listed on its own:
// at thousands of writes a second, one row per entry would cost the store
// more than the writes themselves. A record's id starts with its first
// entry's time in fixed-width hex, so ids sort by time. The days that hold
// entries are listed by kindAuditDay records, written with the entries.
const (
	kindAudit    = "auth.audit"    // tenant: the UTC day; id: auditID; doc: []Entry, oldest first, as zstd-compressed JSON
	kindAuditDay = "auth.auditday" // id: the UTC day; empty doc
	dayLayout    = "2006-01-02"
)

// Outcome sums up how a request ended.
type Outcome string

const (
	OutcomeOK     Outcome = "ok"     // it did what was asked
	OutcomeDenied Outcome = "denied" // refused: no or wrong credentials, or no right (401, 403, 429)
	OutcomeFailed Outcome = "failed" // it failed otherwise (bad request, conflict, error)
)

// OutcomeOf is the outcome of an HTTP status.
func OutcomeOf(status int) Outcome {
	switch {
	case status < 400:
		return OutcomeOK
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests:
		return OutcomeDenied
	}
	return OutcomeFailed
}

// Entry is one line of the audit log. It holds no secret: Record strips
// credentials from the path, and nothing else of a request is kept.
type Entry struct {
	Time time.Time `json:"time"` // UTC
	// Who is the user's name (for a key: its owner's) or "anonymous".
	Who string `json:"who"`
	// Key is the id of the API key used, if one was.
	Key    string `json:"key,omitempty"`
	Remote string `json:"remote,omitempty"` // the client's address
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"` // with the query, secrets redacted
	// Tenant is the tenant acted on ("" the default tenant; AllTenants for
	// platform-wide actions: accounts, @contexts, logins).
	Tenant  string  `json:"tenant"`
	Status  int     `json:"status,omitempty"`
	Outcome Outcome `json:"outcome"`
	// Action names what was done, short and stable: "entity.create",
	// "subscription.delete", "login", "key.revoke"…
	Action string `json:"action"`
}

// NewEntry describes a request that p made on tenant, answered with
// status, for the audit log. p may be nil (authentication failed).
func NewEntry(r *http.Request, p *Principal, tenant string, status int, action string) Entry {
	e := Entry{Who: "anonymous", Remote: RemoteHost(r), Method: r.Method, Path: r.URL.RequestURI(), // Record sanitises it
		Tenant: tenant, Status: status, Outcome: OutcomeOf(status), Action: action}
	if p.Kind() != Anonymous {
		e.Who, e.Key = p.User(), p.KeyID()
	}
	return e
}

// Auditor records entries and reads them back.
type Auditor interface {
	// Record appends an entry; it does not wait for the store.
	Record(Entry)
	// Entries returns the entries that f selects, newest first.
	Entries(ctx context.Context, f Filter) ([]Entry, error)
}

// Filter selects audit entries.
type Filter struct {
	// From and To bound the entries' times: From <= Time < To; zero: no
	// bound.
	From, To time.Time
	// Who selects the entries of a user (with those of their keys), of one
	// API key (its id), or "anonymous"; "": everyone.
	Who string
	// Tenants selects the entries of these tenants ("" is the default
	// tenant, AllTenants the platform-wide actions); nil: of every tenant.
	Tenants []string
	// Limit caps the entries returned (default 1,000). Export: 0 is all.
	Limit int
}

func (f *Filter) match(e *Entry) bool {
	if f.Who != "" && e.Who != f.Who && e.Key != f.Who {
		return false
	}
	if f.Tenants != nil && !slices.Contains(f.Tenants, e.Tenant) {
		return false
	}
	return true
}

func (f *Filter) inTime(t time.Time) bool {
	return (f.From.IsZero() || !t.Before(f.From)) && (f.To.IsZero() || t.Before(f.To))
}

// AuditOptions configure an AuditLog.
type AuditOptions struct {
	Now func() time.Time
	Log *slog.Logger
	// FlushEvery and MaxBatch: entries are written together every
	// FlushEvery (default 100 ms), or as soon as MaxBatch (default 1,000)
	// wait.
	FlushEvery time.Duration
	MaxBatch   int
	// Buffer is how many entries may wait for the writer (default 16,384).
	// When it is full, Record waits up to BlockFor (default 5 s) before
	// dropping the entry, which Dropped counts.
	Buffer   int
	BlockFor time.Duration
	// MaxPending caps the entries kept in memory while the store refuses
	// writes (default 100,000); the writer retries and Record waits.
	MaxPending int
	// Retain, when positive, prunes entries older than that every hour.
	Retain time.Duration
}

func (o *AuditOptions) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 100 * time.Millisecond
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1000
	}
	if o.Buffer <= 0 {
		o.Buffer = 16384
	}
	if o.BlockFor <= 0 {
		o.BlockFor = 5 * time.Second
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 100000
	}
}

// AuditLog is the Auditor over the store's records: entries are batched
// by one writer goroutine into PutRecords, one transaction per batch.
type AuditLog struct {
	st   store.Records
	opts AuditOptions

	ch      chan Entry
	flushes chan chan error
	stop    chan struct{}
	done    sync.WaitGroup
	once    sync.Once

	inst    string // this process's mark in ids: unique across instances
	seq     uint32 // writer goroutine only
	dropped atomic.Uint64
	lastLog atomic.Int64 // unix seconds of the last drop warning
	pruneMu sync.Mutex
}

var _ Auditor = (*AuditLog)(nil)

// NewAuditLog starts an audit log on st; Close stops it.
func NewAuditLog(st store.Records, opts AuditOptions) *AuditLog {
	opts.defaults()
	var b [4]byte
	rand.Read(b[:])
	a := &AuditLog{st: st, opts: opts, ch: make(chan Entry, opts.Buffer), flushes: make(chan chan error),
		stop: make(chan struct{}), inst: hex.EncodeToString(b[:])}
	a.done.Add(1)
	go a.run()
	if opts.Retain > 0 {
		a.done.Add(1)
		go a.retain()
	}
	return a
}

// Record appends an entry (its Time is now when zero). It returns at once
// unless the buffer is full, when it waits up to AuditOptions.BlockFor: an
// audit log must not lose entries, so the request waits rather. An entry
// still not taken then is dropped and counted (Dropped).
func (a *AuditLog) Record(e Entry) {
	clean(&e, a.opts.Now)
	select {
	case a.ch <- e:
		return
	default:
	}
	t := time.NewTimer(a.opts.BlockFor)
	defer t.Stop()
	select {
	case a.ch <- e:
		return
	case <-t.C:
	case <-a.stop:
	}
	a.dropped.Add(1)
	if now := time.Now().Unix(); a.lastLog.Swap(now) != now {
		a.opts.Log.Error("audit: an entry was dropped: the audit log cannot keep up", "dropped", a.dropped.Load())
	}
}

// clean makes an entry fit to store: UTC time, secrets out of the path,
// bounded fields.
func clean(e *Entry, now func() time.Time) {
	if e.Time.IsZero() {
		e.Time = now()
	}
	e.Time = e.Time.UTC()
	e.Path = SanitizePath(e.Path)
	e.Who = clip(e.Who, 128)
	e.Key = clip(e.Key, 64)
	e.Remote = clip(e.Remote, 64)
	e.Method = clip(e.Method, 16)
	e.Tenant = clip(e.Tenant, 80)
	e.Action = clip(e.Action, 64)
	if e.Outcome == "" {
		e.Outcome = OutcomeOf(e.Status)
	}
}

// Dropped is the number of entries lost because the log could not keep up.
func (a *AuditLog) Dropped() uint64 { return a.dropped.Load() }

// Flush writes the entries recorded so far.
func (a *AuditLog) Flush(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case a.flushes <- reply:
	case <-a.stop:
		return errors.New("audit: closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close writes what waits and stops the log.
func (a *AuditLog) Close() error {
	a.once.Do(func() { close(a.stop) })
	a.done.Wait()
	if n := len(a.ch); n > 0 {
		return fmt.Errorf("audit: %d entries could not be written", n)
	}
	return nil
}

// run is the writer goroutine.
func (a *AuditLog) run() {
	defer a.done.Done()
	tick := time.NewTicker(a.opts.FlushEvery)
	defer tick.Stop()
	var batch []Entry
	failing := false
	for {
		in := a.ch
		if len(batch) >= a.opts.MaxPending {
			in = nil // the store refuses writes: let Record wait
		}
		select {
		case e := <-in:
			batch = append(batch, e)
			if len(batch) >= a.opts.MaxBatch && !failing {
				batch, failing = a.write(batch)
			}
		case <-tick.C:
			if len(batch) > 0 {
				batch, failing = a.write(batch)
			}
		case reply := <-a.flushes:
			var err error
			if batch, failing = a.writeAll(batch); failing {
				err = fmt.Errorf("audit: %d entries wait for the store", len(batch)+len(a.ch))
			}
			reply <- err
		case <-a.stop:
			for i := 0; i < 3; i++ {
				if batch, failing = a.writeAll(batch); !failing {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if len(batch) > 0 {
				a.dropped.Add(uint64(len(batch)))
				a.opts.Log.Error("audit: entries lost at close: the store refuses writes", "entries", len(batch))
			}
			return
		}
	}
}

// writeAll writes batch and what waits in the channel now (not what
// comes meanwhile, so that it ends under load), unless the store fails.
func (a *AuditLog) writeAll(batch []Entry) ([]Entry, bool) {
	left := len(a.ch)
	for {
		n := len(batch)
		batch = a.drain(batch)
		left -= len(batch) - n
		var failing bool
		if batch, failing = a.write(batch); failing || left <= 0 {
			return batch, failing
		}
	}
}

// drain takes what waits in the channel.
func (a *AuditLog) drain(batch []Entry) []Entry {
	for len(batch) < a.opts.MaxPending {
		select {
		case e := <-a.ch:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// write stores batch in transactions of MaxBatch entries, one record per
// day; it returns what could not be written (to retry) and whether the
// store failed.
func (a *AuditLog) write(batch []Entry) ([]Entry, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(batch) > 0 {
		n := min(len(batch), a.opts.MaxBatch)
		part := batch[:n]
		slices.SortStableFunc(part, func(x, y Entry) int { return x.Time.Compare(y.Time) })
		var recs []store.Record
		for len(part) > 0 {
			day := part[0].Time.Format(dayLayout)
			end := 1
			for end < len(part) && part[end].Time.Format(dayLayout) == day {
				end++
			}
			doc, err := encodeEntries(part[:end])
			if err != nil {
				a.opts.Log.Error("audit: entries do not encode; dropped", "entries", end, "err", err)
				a.dropped.Add(uint64(end))
				part = part[end:]
				continue
			}
			a.seq++
			recs = append(recs, store.Record{Kind: kindAuditDay, ID: day},
				store.Record{Kind: kindAudit, Tenant: day, ID: auditID(part[0].Time, a.seq, a.inst), Doc: doc})
			part = part[end:]
		}
		if err := a.st.PutRecords(ctx, recs); err != nil {
			a.opts.Log.Warn("audit: writing entries; will retry", "entries", n, "err", err)
			return batch, true
		}
		batch = batch[n:]
	}
	return batch[:0], false
}

// auditID is a record's id: its first entry's time in unix nanoseconds
// and a counter in fixed-width hex, so ids sort by time, then this
// process's mark.
func auditID(t time.Time, seq uint32, inst string) string {
	b := make([]byte, 0, 32)
	b = appendHex(b, uint64(t.UnixNano()), 16)
	b = appendHex(b, uint64(seq), 8)
	b = append(b, inst...)
	return string(b)
}

func appendHex(b []byte, v uint64, width int) []byte {
	const digits = "0123456789abcdef"
	for i := width - 1; i >= 0; i-- {
		b = append(b, digits[(v>>(4*uint(i)))&0xf])
	}
	return b
}

// idTime reads the time back from an id.
func idTime(id string) (time.Time, bool) {
	if len(id) < 16 {
		return time.Time{}, false
	}
	n, err := strconv.ParseUint(id[:16], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, int64(n)).UTC(), true
}

// days lists the days holding entries, oldest first.
func (a *AuditLog) days(ctx context.Context) ([]string, error) {
	recs, err := a.st.ListRecords(ctx, kindAuditDay, "", false)
	if err != nil {
		return nil, fmt.Errorf("audit: listing days: %w", err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out, nil
}

// scan calls fn with the entries f selects, day by day, newest first or
// oldest first; fn returns false to stop.
func (a *AuditLog) scan(ctx context.Context, f Filter, newestFirst bool, fn func(Entry) bool) error {
	if err := a.Flush(ctx); err != nil {
		a.opts.Log.Warn("audit: reading entries, some not written yet", "err", err)
	}
	days, err := a.days(ctx)
	if err != nil {
		return err
	}
	if newestFirst {
		slices.Reverse(days)
	}
	for _, d := range days {
		if (!f.From.IsZero() && d < f.From.UTC().Format(dayLayout)) || (!f.To.IsZero() && d > f.To.UTC().Format(dayLayout)) {
			continue
		}
		recs, err := a.st.ListRecords(ctx, kindAudit, d, false)
		if err != nil {
			return fmt.Errorf("audit: reading %s: %w", d, err)
		}
		if newestFirst {
			slices.Reverse(recs)
		}
		for _, r := range recs {
			es, err := decodeEntries(r.Doc)
			if err != nil {
				a.opts.Log.Warn("audit: entries do not decode; skipped", "day", d, "id", r.ID, "err", err)
				continue
			}
			if newestFirst {
				slices.Reverse(es)
			}
			for i := range es {
				if f.inTime(es[i].Time) && f.match(&es[i]) && !fn(es[i]) {
					return nil
				}
			}
		}
	}
	return nil
}

// Entries returns the entries f selects, newest first, at most f.Limit
// (default 1,000). Entries recorded before the call are included.
func (a *AuditLog) Entries(ctx context.Context, f Filter) ([]Entry, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	out := []Entry{}
	err := a.scan(ctx, f, true, func(e Entry) bool {
		out = append(out, e)
		return len(out) < limit
	})
	return out, err
}

// Export writes the entries f selects to w as JSON lines, oldest first (all
// of them when f.Limit is 0), and returns how many.
func (a *AuditLog) Export(ctx context.Context, w io.Writer, f Filter) (int, error) {
	enc := json.NewEncoder(w)
	n := 0
	var werr error
	err := a.scan(ctx, f, false, func(e Entry) bool {
		if werr = enc.Encode(&e); werr != nil {
			return false
		}
		n++
		return f.Limit <= 0 || n < f.Limit
	})
	if werr != nil {
		return n, fmt.Errorf("audit: export: %w", werr)
	}
	return n, err
}

// Prune deletes the entries older than before and returns how many. Whole
// days go first, then the older part of before's day.
func (a *AuditLog) Prune(ctx context.Context, before time.Time) (int, error) {
	a.pruneMu.Lock()
	defer a.pruneMu.Unlock()
	days, err := a.days(ctx)
	if err != nil {
		return 0, err
	}
	last := before.UTC().Format(dayLayout)
	n := 0
	for _, d := range days {
		if d > last {
			break
		}
		recs, err := a.st.ListRecords(ctx, kindAudit, d, false)
		if err != nil {
			return n, fmt.Errorf("audit: pruning %s: %w", d, err)
		}
		for _, r := range recs {
			if t, ok := idTime(r.ID); ok && !t.Before(before) {
				break // ids sort by their first entry's time
			}
			es, err := decodeEntries(r.Doc)
			if err != nil {
				a.opts.Log.Warn("audit: entries do not decode; pruned", "day", d, "id", r.ID, "err", err)
			}
			keep := slices.DeleteFunc(es, func(e Entry) bool { return e.Time.Before(before) })
			n += len(es) - len(keep)
			if len(keep) > 0 {
				// The record straddles before: it keeps its later part.
				doc, err := encodeEntries(keep)
				if err == nil {
					err = a.st.PutRecords(ctx, []store.Record{{Kind: kindAudit, Tenant: d, ID: r.ID, Doc: doc}})
				}
				if err != nil {
					return n, fmt.Errorf("audit: pruning %s: %w", d, err)
				}
				continue
			}
			if err := a.st.DeleteRecord(ctx, kindAudit, d, r.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return n, fmt.Errorf("audit: pruning %s: %w", d, err)
			}
		}
		if d < last {
			if err := a.st.DeleteRecord(ctx, kindAuditDay, "", d); err != nil && !errors.Is(err, store.ErrNotFound) {
				return n, fmt.Errorf("audit: pruning %s: %w", d, err)
			}
		}
	}
	return n, nil
}

// retain prunes every hour what is older than Retain.
func (a *AuditLog) retain() {
	defer a.done.Done()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-a.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if n, err := a.Prune(ctx, a.opts.Now().Add(-a.opts.Retain)); err != nil {
			a.opts.Log.Warn("audit: pruning old entries", "err", err)
		} else if n > 0 {
			a.opts.Log.Info("audit: pruned old entries", "entries", n)
		}
		cancel()
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

// The entries of a record are compressed: they repeat the same names,
// addresses and routes, so zstd makes them about ten times smaller, and
// the store's one writer, which also writes the city's entities, has that
// much less to write.
var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20))
)

func encodeEntries(es []Entry) ([]byte, error) {
	data, err := json.Marshal(es)
	if err != nil {
		return nil, err
	}
	return zenc.EncodeAll(data, make([]byte, 0, len(data)/4)), nil
}

// decodeEntries reads a record's entries: compressed, or plain JSON.
func decodeEntries(doc []byte) ([]Entry, error) {
	if len(doc) > 0 && doc[0] != '[' {
		var err error
		if doc, err = zdec.DecodeAll(doc, nil); err != nil {
			return nil, err
		}
	}
	var es []Entry
	err := json.Unmarshal(doc, &es)
	return es, err
}
