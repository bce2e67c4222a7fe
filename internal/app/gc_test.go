package app

import "testing"

func TestHeapLimit(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int64
	}{
		{0, 1 << 30},
		{300 << 20, 1 << 30}, // GOGC=200 alone keeps the heap under 1 GiB
		{600 << 20, 1 << 30}, // a million entities: at most 1 GiB
		{1 << 30, 3 << 29},   // past it: half the live heap as headroom
		{4 << 30, 6 << 30},
	} {
		if got := heapLimit(tc.live); got != tc.want {
			t.Errorf("heapLimit(%d MiB) = %d MiB, want %d MiB", tc.live>>20, got>>20, tc.want>>20)
		}
	}
}
