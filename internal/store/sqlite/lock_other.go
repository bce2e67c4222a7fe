//go:build !unix

package sqlite

import "os"

// lockFile does not lock where flock is missing; one process per store file
// is then the operator's to ensure.
func lockFile(path string) (*os.File, error) { return nil, nil }
