package adminapi

import (
	"encoding/json"
	"testing"

	"github.com/zenne-city/zenne/internal/ngsild"
)

// FuzzDecodeBody feeds arbitrary bytes to the body parser: it never
// panics, refuses with a 400 (never a 500), and what it accepts has only
// allowed members, each of them valid JSON; grants it accepts are whole.
func FuzzDecodeBody(f *testing.F) {
	for _, seed := range []string{
		`{"name": "bob", "password": "correct horse battery", "grants": [{"tenant": "a", "role": "viewer"}]}`,
		`{"name": "x", "grants": [{"tenant": "", "role": "editor", "types": ["https://x.org/T"]}]}`,
		`{"name": "x", "name": "y"}`,
		`{"grants": [{"tenant": "a", "role": "viewer", "tenant": "b"}]}`,
		`{"grants": [null, 1, "x", {}]}`,
		`{"name": "x"} {}`,
		`[1, 2]`,
		`{"name": "\ud800"}`,
		"{\"name\": \"x\",\n \"grants\": [}",
		`{"grants": {"tenant": "a"}}`,
		``,
	} {
		f.Add([]byte(seed))
	}
	allowed := []string{"name", "password", "grants"}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeObject(data, "the body", allowed)
		if err != nil {
			if e := ngsild.AsError(err); e.Status() != 400 {
				t.Fatalf("status %d for %q: %v", e.Status(), data, err)
			}
			return
		}
		for name, raw := range m {
			if name != "name" && name != "password" && name != "grants" {
				t.Fatalf("member %q accepted", name)
			}
			if !json.Valid(raw) {
				t.Fatalf("member %q is not JSON: %q", name, raw)
			}
		}
		gs, ok, err := m.grants("grants")
		if err != nil {
			if e := ngsild.AsError(err); e.Status() != 400 {
				t.Fatalf("grants: status %d: %v", e.Status(), err)
			}
			return
		}
		if ok && gs == nil {
			t.Fatalf("grants accepted as nil from %q", data)
		}
	})
}
