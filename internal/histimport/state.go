package histimport

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

const stateVersion = 1

// importState is FILE.import-state: which file went into which store, and
// how far. It is rewritten (temporary file, then rename) after every
// committed batch.
type importState struct {
	Version int       `json:"version"`
	File    string    `json:"file"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	Format  string    `json:"format"`
	Tenant  string    `json:"tenant"`
	Store   string    `json:"store"`
	Position
	Imported      int64 `json:"imported"`
	Rejected      int64 `json:"rejected"`
	RejectedBytes int64 `json:"rejectedBytes"` // of FILE.rejected at this position
	Complete      bool  `json:"complete"`
	// ProbeID and ProbeAttr are the first instance imported: if the store
	// has no history of it, the store is not the one imported into.
	ProbeID   string    `json:"probeEntity,omitempty"`
	ProbeAttr string    `json:"probeAttribute,omitempty"`
	Updated   time.Time `json:"updated"`
}

func readState(path string) (*importState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s importState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("not a state file: %w", err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("state version %d, not %d", s.Version, stateVersion)
	}
	return &s, nil
}

// sameImport reports whether s is the state of an import of the same,
// unchanged file into the same store and tenant.
func (s *importState) sameImport(c *importState) bool {
	return s.differs(c) == ""
}

// differs says how s differs from c ("" when it does not).
func (s *importState) differs(c *importState) string {
	switch {
	case s.Size != c.Size || !s.ModTime.Equal(c.ModTime):
		return fmt.Sprintf("the file as it was before it changed (%d bytes, modified %s; now %d bytes, modified %s)",
			s.Size, s.ModTime.Format(time.RFC3339), c.Size, c.ModTime.Format(time.RFC3339))
	case s.Store != c.Store:
		return fmt.Sprintf("another store (%s)", s.Store)
	case s.Tenant != c.Tenant:
		return fmt.Sprintf("another tenant (%q)", s.Tenant)
	case s.Format != c.Format:
		return fmt.Sprintf("another format (%s)", s.Format)
	}
	return ""
}

// writeState replaces the state file atomically: a crash leaves the old
// state or the new one, never half of one.
func writeState(path string, s *importState) error {
	s.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
