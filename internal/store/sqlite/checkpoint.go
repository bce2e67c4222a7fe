package sqlite

import (
	"context"
	"log/slog"
	"time"
)

// checkpointInterval is the least time between two checkpoints: pages
// written several times in between are copied to the database file once.
const checkpointInterval = 50 * time.Millisecond

// checkpointer copies committed WAL pages into the database file with
// PASSIVE checkpoints on its own connection, so the writer never waits for a
// checkpoint (or its fsync) and readers are never blocked by one. The WAL
// restarts from its beginning once a checkpoint has caught up.
func (s *Store) checkpointer() {
	defer close(s.ckptDone)
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-s.quit:
			return
		case <-s.kick:
		}
		var busy, logFrames, done int
		err := s.cdb.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &done)
		if err != nil {
			slog.Warn("store checkpoint", "err", err)
		}
		t.Reset(checkpointInterval)
		select {
		case <-s.quit:
			t.Stop()
			return
		case <-t.C:
		}
	}
}
