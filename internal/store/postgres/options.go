package postgres

import (
	"runtime"
	"time"
)

func (o *Options) defaults() {
	if o.MaxConns <= 0 {
		o.MaxConns = max(8, 4*runtime.GOMAXPROCS(0))
	}
	if o.MaxBatchOps <= 0 {
		o.MaxBatchOps = 2000
	}
	if o.Writers <= 0 {
		o.Writers = 2
	}
	if o.SealAfter <= 0 {
		o.SealAfter = 10 * time.Minute
	}
}
