package codec

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/zenne-city/zenne/internal/store"
)

// logRow is a row of two changes (an update and a deletion), with effects
// when given.
func logRow(t testing.TB, effects []RowEffect) []byte {
	c := sampleChange()
	after, err := EncodeEntity(c.After)
	if err != nil {
		t.Fatal(err)
	}
	b := AppendLogChange(AppendLogTime(nil, time.Unix(1700000000, 5)), &c, after, nil)
	d := store.Change{Kind: store.EntityDeleted, Tenant: "t2", ID: "urn:gone"}
	b = AppendLogChange(b, &d, nil, nil)
	if effects != nil {
		b = AppendLogEffects(b, effects)
	}
	return b
}

// A row's effects read back, and readers of its changes do not see them.
func TestLogRowEffects(t *testing.T) {
	effects := []RowEffect{{Change: 0, From: 7, To: 7}, {Change: -1, From: 9}}
	row := logRow(t, effects)
	entries, got, ok, err := ScanLogRow(row, 2)
	if err != nil || !ok {
		t.Fatalf("ScanLogRow: ok %v, %v", ok, err)
	}
	if !slices.Equal(got, effects) {
		t.Fatalf("effects %+v, want %+v", got, effects)
	}
	c := sampleChange()
	if string(entries[0].Tenant) != c.Tenant || string(entries[0].ID) != c.ID || entries[0].Kind != c.Kind ||
		string(entries[1].ID) != "urn:gone" || len(entries[1].After) != 0 {
		t.Fatalf("entries %+v", entries)
	}
	if e, err := DecodeEntity(entries[0].After); err != nil || e.ID != c.ID {
		t.Fatalf("the after document: %v %v", e, err)
	}
	plain, err := DecodeLogRow(nil, 10, 2, logRow(t, nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	with, err := DecodeLogRow(nil, 10, 2, row, 0)
	if err != nil || len(with) != 2 || with[1].ID != "urn:gone" || with[0].Seq != plain[0].Seq {
		t.Fatalf("DecodeLogRow of a row with effects: %+v %v", with, err)
	}

	// Without effects: ok is false. With something else after the changes,
	// or effects that name a change the row does not have: an error.
	if _, _, ok, err := ScanLogRow(logRow(t, nil), 2); ok || err != nil {
		t.Fatalf("a row without effects: ok %v, %v", ok, err)
	}
	for name, bad := range map[string][]byte{
		"unknown tag":      append(logRow(t, nil), 0x01, 0),
		"change too large": logRow(t, []RowEffect{{Change: 2, To: 3}}),
		"truncated":        logRow(t, effects)[:len(row)-1],
		"trailing bytes":   append(bytes.Clone(row), 0),
	} {
		if _, _, _, err := ScanLogRow(bad, 2); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// Stored rows are packed; rows stored plain (before packing) read the same.
func TestLogRowPacked(t *testing.T) {
	row := logRow(t, []RowEffect{{Change: 0, From: 3, To: 3}})
	packed := PackLogRow(row)
	if len(packed) >= len(row) || packed[0] != logPacked {
		t.Fatalf("packed %d bytes into %d (first byte %#x)", len(row), len(packed), packed[0])
	}
	for name, data := range map[string][]byte{"packed": packed, "plain": row} {
		cs, err := DecodeLogRow(nil, 10, 2, data, 0)
		if err != nil || len(cs) != 2 || cs[0].ID != "urn:a" || cs[1].ID != "urn:gone" {
			t.Fatalf("%s: DecodeLogRow: %+v %v", name, cs, err)
		}
		if _, effects, ok, err := ScanLogRow(data, 2); err != nil || !ok || effects[0].From != 3 {
			t.Fatalf("%s: ScanLogRow: %v %v %v", name, effects, ok, err)
		}
	}
	if _, err := DecodeLogRow(nil, 10, 2, packed[:len(packed)-3], 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a truncated packed row: %v, want ErrCorrupt", err)
	}
}

// FuzzScanLogRow: the query index reads every log row of every process; no
// input may make it panic.
func FuzzScanLogRow(f *testing.F) {
	f.Add(logRow(f, []RowEffect{{Change: 0, From: 1, To: 2}}), 2)
	f.Add(logRow(f, nil), 2)
	f.Add(PackLogRow(logRow(f, []RowEffect{{Change: 1, From: 4}})), 2)
	f.Fuzz(func(t *testing.T, row []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		ScanLogRow(row, n)
	})
}
