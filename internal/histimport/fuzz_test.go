package histimport

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/store"
)

// pump runs a source through a pipeline of two batches, as the importer
// does, and calls each with every batch it fills.
func pump(src source, size int, each func(b *batch)) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	free, full := make(chan *batch, 2), make(chan *batch, 2)
	for range 2 {
		b := &batch{size: size}
		b.ensureAttrs()
		free <- b
	}
	k := &sink{ctx: ctx, free: free, full: full}
	errc := make(chan error, 1)
	go func() {
		defer close(full)
		if err := k.take(); err != nil {
			errc <- err
			return
		}
		errc <- src.run(k)
	}()
	for b := range full {
		each(b)
		free <- b
	}
	return <-errc
}

// drain runs a source and returns what it read.
func drain(src source, size int) ([]store.ImportRecord, []Reject, error) {
	var recs []store.ImportRecord
	var rejects []Reject
	err := pump(src, size, func(b *batch) {
		for _, r := range b.recs {
			a := *r.Attr // batches are reused
			r.Attr = &a
			recs = append(recs, r)
		}
		rejects = append(rejects, b.rejects...)
	})
	return recs, rejects, err
}

// checkRecord holds what every imported instance must be.
func checkRecord(t *testing.T, r store.ImportRecord) {
	t.Helper()
	a := r.Attr
	if r.EntityID == "" || ngsild.ValidURI(r.EntityID) != nil || len(r.Types) == 0 || r.Name == "" {
		t.Fatalf("record %+v", r)
	}
	if a.ObservedAt.IsZero() || a.ObservedAt.Location() != time.UTC {
		t.Fatalf("observedAt %v", a.ObservedAt)
	}
	if f, ok := a.Value.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
		t.Fatalf("value %v", f)
	}
	if a.Value == nil {
		t.Fatalf("no value: %+v", a)
	}
}

func FuzzCSVRow(f *testing.F) {
	for _, s := range []string{
		"urn:ngsi-ld:Sensor:1,T,temperature,2024-01-01T00:00:00Z,21.5,CEL,",
		`urn:ngsi-ld:Sensor:1,,status,2024-01-01T00:00:00.123+02:00,"a, ""b""",,urn:ngsi-ld:Dataset:x`,
		"urn:x:1,Meter,open,2024-02-29T23:59:59Z,true,,",
		"urn:x:1,Meter,n,2024-02-29T23:59:59Z,-0.5e-3,,",
		" urn:x:1 , Meter , n , 2024-02-29T23:59:59Z , 007 , , ",
		"urn:x:1,Meter,n,2024-13-01T00:00:00Z,1,,",
		`urn:x:1,"Meter,n,2024`,
		",,,,,,",
		"urn:x:1,Meter,location,2024-01-01T00:00:00Z,1,,",
	} {
		f.Add(s)
	}
	n := newNames(jsonld.NewResolver(jsonld.Options{}).Core())
	cols, err := parseHeader([]byte("entityId,type,attribute,time,value,unit,datasetId"))
	if err != nil {
		f.Fatal(err)
	}
	p := &csvParser{cols: cols, names: n}
	f.Fuzz(func(t *testing.T, line string) {
		var rec store.ImportRecord
		var a ngsild.Attribute
		e, err := p.row([]byte(line), &rec, &a)
		if err != nil {
			if _, ok := err.(rowError); !ok {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		if e == nil || rec.Attr != &a {
			t.Fatal("no entity or instance")
		}
		checkRecord(t, rec)
		e.observe(rec.Name, &a)
		// Numbers are JSON numbers, with the value they say.
		fields, _ := (&splitter{}).split([]byte(line))
		if v, ok := a.Value.(float64); ok {
			if raw := fields[4]; !isJSONNumber(raw) || fmt.Sprint(v) != fmt.Sprint(mustFloat(t, string(raw))) {
				t.Fatalf("number %v from %q", v, raw)
			}
		}

		// The same row in a file reads the same.
		src, err := newCSVSource(strings.NewReader("entityId,type,attribute,time,value,unit,datasetId\n"+line), n, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		recs, rejects, err := drain(src, 3)
		if err != nil {
			if strings.Contains(err.Error(), "not closed") {
				return // a quoted field open at the end of the file
			}
			t.Fatal(err)
		}
		if len(rejects) > 0 && strings.ContainsAny(line, "\r\n") {
			return // the row was several lines
		}
		if len(recs) != 1 || recs[0].Attr.Value != a.Value || !recs[0].Attr.ObservedAt.Equal(a.ObservedAt) {
			t.Fatalf("from a file: %v, %v", recs, rejects)
		}
	})
}

func mustFloat(t *testing.T, s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func FuzzTemporalJSON(f *testing.F) {
	for _, s := range []string{
		`{"id": "urn:x:1", "type": "T", "a": [{"type": "Property", "value": 1, "observedAt": "2024-01-01T00:00:00Z", "unitCode": "CEL"}]}`,
		`[{"id": "urn:x:1", "type": ["T", "U"], "a": {"type": "Property", "values": [[1, "2024-01-01T00:00:00Z"], ["x", "2024-01-01T00:01:00Z"]]}}]`,
		`{"type": "T", "r": {"type": "Relationship", "objects": [["urn:y", "2024-01-01T00:00:00Z"]]}, "id": "urn:x:1", "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"}`,
		`{"id": "urn:x:1", "type": "T", "location": [{"type": "GeoProperty", "value": {"type": "Point", "coordinates": [4, 50]}, "observedAt": "2024-01-01T00:00:00Z"}]}`,
		`{"id": "urn:x:1", "type": "T", "l": {"type": "LanguageProperty", "languageMaps": [[{"languageMap": {"fr": "x"}}, "2024-01-01T00:00:00Z"]]}}`,
		`{"id": "urn:x:1", "type": "T", "a": 5}`,
		`{"id": 5}{"id": "urn:x:2", "type": "T", "a": [{"value": true, "observedAt": "2024-01-01T00:00:00+01:00", "datasetId": "urn:d"}]}`,
		`[{"id": "urn:x:1", "type": "T", "a": [1, {"value": null, "observedAt": "x"}]}]`,
		`[`, `{"id": "urn:x:1", "type": "T", "a": {"values": [[1]]`, `7`, `[]`,
	} {
		f.Add([]byte(s))
	}
	res := jsonld.NewResolver(jsonld.Options{HTTPClient: nil})
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.Contains(data, []byte("http")) && !bytes.Contains(data, []byte("uri.etsi.org")) {
			return // no network in a fuzz test
		}
		n := newNames(res.Core())
		src := newJSONSource(context.Background(), bytes.NewReader(data), n, res.Core(), res, time.Time{})
		recs, rejects, _ := drain(src, 2)
		for _, r := range recs {
			checkRecord(t, r)
		}
		for _, r := range rejects {
			if r.Pos <= 0 || r.Msg == "" || !strings.HasPrefix(r.Where, "instance ") {
				t.Fatalf("reject %+v", r)
			}
		}
		// Positions are in order and each instance is read once.
		if got := int64(len(recs) + len(rejects)); got > src.seq {
			t.Fatalf("%d records and rejects from %d instances", got, src.seq)
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2024-01-01T00:00:00Z", "2024-02-29T23:59:59.999999999+14:00", "0000-01-01T00:00:00Z",
		"2023-02-29T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00-00:30", "2024-01-01t00:00:00z",
		"2024-01-01T00:00:00.1234567891Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseTime([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if !ok {
			return // the fallback parses it (or rejects it)
		}
		if err != nil {
			t.Fatalf("parseTime(%q) = %v, but time.Parse says %v", s, got, err)
		}
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("parseTime(%q) = %v, want %v", s, got, want.UTC())
		}
	})
}

// BenchmarkCSV measures the CSV reader alone (no store): rows of a year of
// 15-minute readings.
func BenchmarkCSV(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("entityId,attribute,time,value,unit\n")
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const rows = 100_000
	for i := range rows {
		fmt.Fprintf(&buf, "urn:ngsi-ld:Sensor:energy-%04d,energy,%s,%d.%03d,KWH\n", i%1000, t0.Add(time.Duration(i/1000)*15*time.Minute).Format(time.RFC3339), i, i%1000)
	}
	data := buf.Bytes()
	c := jsonld.NewResolver(jsonld.Options{}).Core()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		src, err := newCSVSource(bytes.NewReader(data), newNames(c), t0)
		if err != nil {
			b.Fatal(err)
		}
		recs, _, err := drainCount(src, 20_000)
		if err != nil || recs != rows {
			b.Fatal(recs, err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// drainCount runs a source and counts what it read.
func drainCount(src source, size int) (recs, rejects int, err error) {
	err = pump(src, size, func(b *batch) {
		recs += len(b.recs)
		rejects += len(b.rejects)
	})
	return recs, rejects, err
}
