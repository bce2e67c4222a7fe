//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on path+".lock" for the life of the
// store: the in-memory query index, caches and dictionaries assume this
// process is the file's only writer, so a second zenne (or `zenne import`
// while a server runs) must not open it. The kernel releases the lock when
// the process dies, even by kill -9.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another zenne process: stop it first (or use its API)", path)
		}
		return nil, err
	}
	return f, nil
}
