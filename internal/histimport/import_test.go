package histimport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/jsonld"
	"github.com/zenne-city/zenne/internal/ngsild"
	"github.com/zenne-city/zenne/internal/ngsild/temporal"
	"github.com/zenne-city/zenne/internal/store"
	"github.com/zenne-city/zenne/internal/store/sqlite"
)

const core = ngsild.DefaultContextNS

func openStore(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(dir, "zenne.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// inst is a recorded instance as the tests compare them.
type inst struct {
	Time  string
	Value any
	Unit  string
	DS    string
}

func history(t *testing.T, s store.Store, tenant, id, attr string) []inst {
	t.Helper()
	h, err := s.EntityHistory(context.Background(), tenant, id, []string{attr}, &temporal.Query{})
	if err != nil {
		t.Fatalf("history of %s %s: %v", id, attr, err)
	}
	var out []inst
	for _, in := range h.Attrs[attr] {
		out = append(out, inst{in.Attr.ObservedAt.UTC().Format(time.RFC3339Nano), in.Attr.Value, in.Attr.UnitCode, in.Attr.DatasetID})
	}
	return out
}

func sameInsts(t *testing.T, what string, got, want []inst) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func TestImportCSV(t *testing.T) {
	path := writeFile(t, "meters.csv", "\ufeffentityId, attribute ,time,value,unit,datasetId\r\n"+
		"urn:ngsi-ld:EnergyMeter:m1,energy,2024-01-01T00:15:00Z,10.125,KWH,\r\n"+
		"urn:ngsi-ld:EnergyMeter:m1,energy,2024-01-01T00:00:00Z,10,KWH,\r\n"+
		"urn:ngsi-ld:EnergyMeter:m1,energy,2024-01-01T01:00:00+01:00,9.5,KWH,urn:ngsi-ld:Dataset:b\r\n"+
		"urn:ngsi-ld:EnergyMeter:m1,status,2024-01-01T00:00:00.250Z,\"ok, mostly\",,\r\n"+
		"\r\n"+
		"urn:ngsi-ld:EnergyMeter:m1,status,2024-01-01T00:15:00Z,\"multi\nline \"\"quoted\"\"\",,\r\n"+
		"urn:ngsi-ld:EnergyMeter:m2,open,2024-01-01T00:00:00Z,true,,\r\n"+
		"urn:ngsi-ld:EnergyMeter:m2,open,2024-01-01T00:15:00Z,false,,\r\n"+
		"urn:ngsi-ld:EnergyMeter:m2,code,2024-01-01T00:15:00Z,007,,\r\n"+
		"urn:ngsi-ld:EnergyMeter:m2,code,2024-01-01T00:30:00Z,-1.5e3,,\n")
	s := openStore(t, t.TempDir())
	defer s.Close()
	sum, err := Import(context.Background(), s, path, Options{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 9 || sum.Rejected != 0 || sum.Entities != 2 || sum.EntitiesCreated != 2 {
		t.Fatalf("summary %+v", sum)
	}
	m1, m2 := "urn:ngsi-ld:EnergyMeter:m1", "urn:ngsi-ld:EnergyMeter:m2"
	sameInsts(t, "energy", history(t, s, "", m1, core+"energy"), []inst{
		{"2024-01-01T00:00:00Z", 10.0, "KWH", ""},
		{"2024-01-01T00:00:00Z", 9.5, "KWH", "urn:ngsi-ld:Dataset:b"},
		{"2024-01-01T00:15:00Z", 10.125, "KWH", ""},
	})
	sameInsts(t, "status", history(t, s, "", m1, ngsild.CoreNS+"status"), []inst{
		{"2024-01-01T00:00:00.25Z", "ok, mostly", "", ""},
		{"2024-01-01T00:15:00Z", "multi\nline \"quoted\"", "", ""},
	})
	sameInsts(t, "open", history(t, s, "", m2, core+"open"), []inst{
		{"2024-01-01T00:00:00Z", true, "", ""}, {"2024-01-01T00:15:00Z", false, "", ""},
	})
	sameInsts(t, "code", history(t, s, "", m2, core+"code"), []inst{
		{"2024-01-01T00:15:00Z", "007", "", ""}, {"2024-01-01T00:30:00Z", -1500.0, "", ""},
	})

	// The entities exist now, with their latest instances.
	e, err := s.Get(context.Background(), "", m1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e.Types, []string{core + "EnergyMeter"}) || e.CreatedAt.IsZero() {
		t.Fatalf("entity %+v", e)
	}
	if a := e.Instance(core+"energy", ""); a == nil || a.Value != 10.125 || !a.ObservedAt.Equal(time.Date(2024, 1, 1, 0, 15, 0, 0, time.UTC)) || a.ModifiedAt.IsZero() {
		t.Fatalf("current energy %+v", a)
	}
	if a := e.Instance(core+"energy", "urn:ngsi-ld:Dataset:b"); a == nil || a.Value != 9.5 {
		t.Fatalf("current energy of dataset b %+v", a)
	}
	// ... and their history was not recorded a second time.
	if n := len(history(t, s, "", m1, core+"energy")); n != 3 {
		t.Fatalf("%d energy instances after the current state was written, want 3", n)
	}
	if st, err := readState(path + ".import-state"); err != nil || !st.Complete || st.Line != 12 {
		t.Fatalf("state %+v, %v", st, err)
	}
}

func TestImportCSVTypeColumnAndContext(t *testing.T) {
	// The Environment Smart Data Models context names temperature and
	// AirQualityObserved; ids need not name their type with a type column.
	path := writeFile(t, "aq.csv", "type,entityId,attribute,time,value,unit\n"+
		"AirQualityObserved,urn:x:station-1,temperature,2024-05-01T10:00:00Z,12.5,CEL\n"+
		"AirQualityObserved,urn:x:station-1,temperature,2024-05-01T11:00:00Z,13,CEL\n")
	s := openStore(t, t.TempDir())
	defer s.Close()
	res := jsonld.NewResolver(jsonld.Options{})
	c, err := res.Resolve(context.Background(), jsonld.SDMContextURL("Environment"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Import(context.Background(), s, path, Options{Context: c, Tenant: "city"}); err != nil {
		t.Fatal(err)
	}
	const sdm = "https://smartdatamodels.org/dataModel.Environment/"
	sameInsts(t, "temperature", history(t, s, "city", "urn:x:station-1", sdm+"temperature"), []inst{
		{"2024-05-01T10:00:00Z", 12.5, "CEL", ""}, {"2024-05-01T11:00:00Z", 13.0, "CEL", ""},
	})
	e, err := s.Get(context.Background(), "city", "urn:x:station-1")
	if err != nil || !reflect.DeepEqual(e.Types, []string{sdm + "AirQualityObserved"}) {
		t.Fatalf("entity %+v, %v", e, err)
	}
}

func TestImportCSVRejects(t *testing.T) {
	path := writeFile(t, "bad.csv", "entityId,attribute,time,value,unit\n"+
		"urn:ngsi-ld:Sensor:1,t,2024-01-01T00:00:00Z,1,CEL\n"+ // 2 ok
		"urn:ngsi-ld:Sensor:1,t,yesterday,2,CEL\n"+ // 3 bad time
		"urn:x:1,t,2024-01-01T00:00:00Z,3,CEL\n"+ // 4 no type
		"urn:ngsi-ld:Sensor:1,t,2024-01-01T00:00:00Z\n"+ // 5 fields
		"urn:ngsi-ld:Sensor:1,t,2024-01-01T00:00:00Z,,CEL\n"+ // 6 no value
		"not a uri,t,2024-01-01T00:00:00Z,1,CEL\n"+ // 7 id
		"urn:ngsi-ld:Sensor:1,type,2024-01-01T00:00:00Z,1,CEL\n"+ // 8 reserved name
		"urn:ngsi-ld:Sensor:1,location,2024-01-01T00:00:00Z,1,\n"+ // 9 geo
		"urn:ngsi-ld:Sensor:1,t,2024-01-01T00:15:00Z,a\"b,CEL\n"+ // 10 stray quote
		"urn:ngsi-ld:Sensor:1,t,2024-02-30T00:00:00Z,1,CEL\n"+ // 11 no such day
		"urn:ngsi-ld:Sensor:1,t,2024-01-01T00:15:00Z,4,CEL\n") // 12 ok
	s := openStore(t, t.TempDir())
	defer s.Close()
	sum, err := Import(context.Background(), s, path, Options{Batch: 4})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 2 || sum.Rejected != 9 {
		t.Fatalf("imported %d, rejected %d: %v", sum.Imported, sum.Rejected, sum.FirstRejects)
	}
	wantLines := []int64{3, 4, 5, 6, 7, 8, 9, 10, 11}
	wantMsgs := []string{"RFC 3339", "add a type column", "5 columns", "no value", "not a URI", "not an attribute name", "GeoProperty", "quote", "RFC 3339"}
	for i, r := range sum.FirstRejects {
		if r.Pos != wantLines[i] || !strings.Contains(r.Msg, wantMsgs[i]) || r.Where != fmt.Sprintf("line %d", wantLines[i]) {
			t.Errorf("reject %d: %+v, want line %d saying %q", i, r, wantLines[i], wantMsgs[i])
		}
	}
	b, err := os.ReadFile(sum.RejectedFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 9 || !strings.HasPrefix(lines[0], "line 3: ") || !strings.HasSuffix(lines[0], "urn:ngsi-ld:Sensor:1,t,yesterday,2,CEL") {
		t.Fatalf("rejected file:\n%s", b)
	}
	sameInsts(t, "t", history(t, s, "", "urn:ngsi-ld:Sensor:1", core+"t"), []inst{
		{"2024-01-01T00:00:00Z", 1.0, "CEL", ""}, {"2024-01-01T00:15:00Z", 4.0, "CEL", ""},
	})
}

func TestImportBadHeader(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer s.Close()
	for _, tc := range []struct{ name, text, want string }{
		{"unknown column", "entityId,attribute,when,value\n", `column "when"`},
		{"missing column", "entityId,attribute,value\n", "no time column"},
		{"empty", "\n\n", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Import(context.Background(), s, writeFile(t, "x.csv", tc.text), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
	if _, err := Import(context.Background(), s, writeFile(t, "x.dat", "a"), Options{}); err == nil || !strings.Contains(err.Error(), "--format") {
		t.Fatalf("error %v for an unknown extension", err)
	}
}

func TestGiveUpWhenEverythingIsRejected(t *testing.T) {
	var b strings.Builder
	b.WriteString("entityId,attribute,time,value\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "urn:x:%d,a,2024-01-01T00:00:00Z,1\n", i)
	}
	s := openStore(t, t.TempDir())
	defer s.Close()
	_, err := Import(context.Background(), s, writeFile(t, "x.csv", b.String()), Options{Batch: 500})
	if !errors.Is(err, ErrAllRejected) || !strings.Contains(err.Error(), "type column") {
		t.Fatalf("error %v, want ErrAllRejected", err)
	}
}

// series writes a CSV of n readings of each of sensors sensors.
func series(t *testing.T, sensors, n int) string {
	var b strings.Builder
	b.WriteString("entityId,attribute,time,value,unit\n")
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		for s := range sensors {
			fmt.Fprintf(&b, "urn:ngsi-ld:Meter:%d,energy,%s,%d.%03d,KWH\n", s, t0.Add(time.Duration(i)*15*time.Minute).Format(time.RFC3339), i, s)
		}
	}
	return writeFile(t, "series.csv", b.String())
}

func countAll(t *testing.T, s store.Store, sensors int) int {
	total := 0
	for i := range sensors {
		h := history(t, s, "", fmt.Sprintf("urn:ngsi-ld:Meter:%d", i), core+"energy")
		seen := map[string]bool{}
		for _, x := range h {
			if seen[x.Time] {
				t.Fatalf("meter %d has two instances at %s", i, x.Time)
			}
			seen[x.Time] = true
		}
		total += len(h)
	}
	return total
}

func TestResume(t *testing.T) {
	const sensors, n = 7, 300 // 2,100 rows, batches of 500
	path := series(t, sensors, n)
	dir := t.TempDir()
	s := openStore(t, dir)
	defer s.Close()

	ctx, cancel := context.WithCancel(context.Background())
	batches := 0
	_, err := Import(ctx, s, path, Options{Batch: 500, Progress: func(Progress) {
		batches++
		cancel() // interrupted after the first batch
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	st, err := readState(path + ".import-state")
	if err != nil || st.Complete || st.Line != 501 || st.Imported != 500 {
		t.Fatalf("state after the interruption %+v, %v", st, err)
	}
	if _, err := s.Get(context.Background(), "", "urn:ngsi-ld:Meter:0"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an interrupted import created entities: %v", err)
	}

	var notices []string
	sum, err := Import(context.Background(), s, path, Options{Batch: 500, Notice: func(m string) { notices = append(notices, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Resumed || sum.ImportedNow != 1600 || sum.Imported != 2100 || sum.EntitiesCreated != sensors || len(notices) != 1 || !strings.Contains(notices[0], "after line 501") {
		t.Fatalf("resumed summary %+v, notices %q", sum, notices)
	}
	if got := countAll(t, s, sensors); got != sensors*n {
		t.Fatalf("%d instances stored, want %d", got, sensors*n)
	}
	// The entities' current state is their latest reading, also for what
	// the first run imported.
	e, err := s.Get(context.Background(), "", "urn:ngsi-ld:Meter:3")
	if err != nil || e.Instance(core+"energy", "").Value != 299.003 {
		t.Fatalf("current state %+v, %v", e, err)
	}
}

func TestImportTwice(t *testing.T) {
	const sensors, n = 3, 200
	path := series(t, sensors, n)
	s := openStore(t, t.TempDir())
	defer s.Close()
	if _, err := Import(context.Background(), s, path, Options{Batch: 250}); err != nil {
		t.Fatal(err)
	}
	// A complete import is not done again...
	sum, err := Import(context.Background(), s, path, Options{})
	if err != nil || !sum.AlreadyDone || sum.Imported != sensors*n {
		t.Fatalf("second run %+v, %v", sum, err)
	}
	// ... and, when asked, adds nothing: the store skips what it holds.
	sum, err = Import(context.Background(), s, path, Options{Restart: true, Batch: 170})
	if err != nil || sum.AlreadyDone || sum.EntitiesCreated != 0 {
		t.Fatalf("restarted run %+v, %v", sum, err)
	}
	if got := countAll(t, s, sensors); got != sensors*n {
		t.Fatalf("%d instances after importing twice, want %d", got, sensors*n)
	}
}

func TestFileChangedStartsOver(t *testing.T) {
	path := series(t, 2, 10)
	s := openStore(t, t.TempDir())
	defer s.Close()
	st := &importState{Version: stateVersion, File: path, Size: 1, Format: "csv", Position: Position{Line: 15}, Imported: 14}
	if err := writeState(path+".import-state", st); err != nil {
		t.Fatal(err)
	}
	var notices []string
	sum, err := Import(context.Background(), s, path, Options{Notice: func(m string) { notices = append(notices, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Resumed || sum.Imported != 20 || len(notices) != 1 || !strings.Contains(notices[0], "before it changed") {
		t.Fatalf("summary %+v, notices %q", sum, notices)
	}
}

func TestStoreReplacedStartsOver(t *testing.T) {
	path := series(t, 2, 10)
	s := openStore(t, t.TempDir())
	if _, err := Import(context.Background(), s, path, Options{}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// The same store id, but a new, empty store.
	s = openStore(t, t.TempDir())
	defer s.Close()
	var notices []string
	sum, err := Import(context.Background(), s, path, Options{Notice: func(m string) { notices = append(notices, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.AlreadyDone || sum.ImportedNow != 20 || len(notices) != 1 || !strings.Contains(notices[0], "does not hold") {
		t.Fatalf("summary %+v, notices %q", sum, notices)
	}
}

func TestImportJSON(t *testing.T) {
	const doc = `[
 {"id": "urn:ngsi-ld:Sensor:j1", "type": "Sensor",
  "temperature": [
    {"type": "Property", "value": 20.5, "observedAt": "2024-03-01T10:00:00Z", "unitCode": "CEL", "instanceId": "urn:x:1"},
    {"type": "Property", "value": 21, "observedAt": "2024-03-01T11:00:00Z", "unitCode": "CEL"},
    {"type": "Property", "value": 22, "unitCode": "CEL"}
  ],
  "owner": [{"type": "Relationship", "object": "urn:ngsi-ld:Person:p", "observedAt": "2024-03-01T10:00:00Z"}],
  "name": {"type": "Property", "value": "north", "observedAt": "2024-03-01T09:00:00Z"}
 },
 {"type": "AirQualityObserved",
  "temperature": {"type": "Property", "unitCode": "CEL", "values": [[1.5, "2024-03-02T00:00:00Z"], [2, "2024-03-02T01:00:00Z"], [3]]},
  "refDevice": {"type": "Relationship", "objects": [["urn:d:1", "2024-03-02T00:00:00Z"]]},
  "id": "urn:x:aq1",
  "@context": ["https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"]
 },
 {"id": "urn:x:notype", "v": [{"value": 1, "observedAt": "2024-03-02T00:00:00Z"}]}
]`
	path := writeFile(t, "t.json", doc)
	s := openStore(t, t.TempDir())
	defer s.Close()
	res := jsonld.NewResolver(jsonld.Options{})
	sum, err := Import(context.Background(), s, path, Options{Resolver: res, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 7 || sum.Rejected != 3 || sum.EntitiesCreated != 2 {
		t.Fatalf("summary %+v", sum)
	}
	want := []struct {
		pos  int64
		what string
	}{{3, "no observedAt"}, {8, "not [value"}, {10, "no type"}}
	for i, w := range want {
		r := sum.FirstRejects[i]
		if r.Pos != w.pos || !strings.Contains(r.Msg, w.what) || !strings.HasPrefix(r.Where, fmt.Sprintf("instance %d (entity ", w.pos)) {
			t.Errorf("reject %d: %+v, want instance %d saying %q", i, r, w.pos, w.what)
		}
	}
	sameInsts(t, "j1 temperature", history(t, s, "", "urn:ngsi-ld:Sensor:j1", core+"temperature"), []inst{
		{"2024-03-01T10:00:00Z", 20.5, "CEL", ""}, {"2024-03-01T11:00:00Z", 21.0, "CEL", ""},
	})
	sameInsts(t, "j1 owner", history(t, s, "", "urn:ngsi-ld:Sensor:j1", core+"owner"), []inst{
		{"2024-03-01T10:00:00Z", "urn:ngsi-ld:Person:p", "", ""},
	})
	const sdm = "https://smartdatamodels.org/dataModel.Environment/"
	sameInsts(t, "aq1 temperature", history(t, s, "", "urn:x:aq1", sdm+"temperature"), []inst{
		{"2024-03-02T00:00:00Z", 1.5, "CEL", ""}, {"2024-03-02T01:00:00Z", 2.0, "CEL", ""},
	})
	e, err := s.Get(context.Background(), "", "urn:x:aq1")
	if err != nil || e.Types[0] != sdm+"AirQualityObserved" || e.Instance(sdm+"refDevice", "").Kind != ngsild.Relationship {
		t.Fatalf("aq1 %+v, %v", e, err)
	}
}

func TestImportJSONSingleEntityAndResume(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"id": "urn:ngsi-ld:Sensor:big", "type": "Sensor", "v": {"type": "Property", "values": [`)
	const n = 1000
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `[%d, "%s"]`, i, t0.Add(time.Duration(i)*time.Minute).Format(time.RFC3339))
	}
	b.WriteString("]}}")
	path := writeFile(t, "big.json", b.String())
	s := openStore(t, t.TempDir())
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Import(ctx, s, path, Options{Batch: 300, Progress: func(Progress) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v", err)
	}
	sum, err := Import(context.Background(), s, path, Options{Batch: 300})
	if err != nil || !sum.Resumed || sum.ImportedNow != n-300 || sum.EntitiesCreated != 1 {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	h := history(t, s, "", "urn:ngsi-ld:Sensor:big", core+"v")
	if len(h) != n || h[n-1].Value != float64(n-1) {
		t.Fatalf("%d instances, last %v", len(h), h[len(h)-1])
	}
}

func TestImportJSONSyntaxError(t *testing.T) {
	path := writeFile(t, "bad.json", `[{"id": "urn:x:1", "type": "T", "a": [{"value": 1, "observedAt": "2024-01-01T00:00:00Z"}]}, {"id": `)
	s := openStore(t, t.TempDir())
	defer s.Close()
	sum, err := Import(context.Background(), s, path, Options{})
	if err == nil || !strings.Contains(err.Error(), "after 2 entities") || !strings.Contains(err.Error(), "the 1 rows before it were imported") {
		t.Fatalf("error %v", err)
	}
	// What came before the error is stored.
	if sum.ImportedNow != 1 || len(history(t, s, "", "urn:x:1", core+"a")) != 1 {
		t.Fatalf("summary %+v", sum)
	}
}
