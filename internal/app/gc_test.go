package app

import "testing"

func TestHeapLimit(t *testing.T) {
	for _, tc := range []struct {
		live uint64
		want int64
	}{
		{0, 1152 << 20},
		{300 << 20, 1152 << 20}, // GOGC=200 alone keeps the heap under it
		{550 << 20, 1152 << 20}, // a million entities just opened
		{700 << 20, 1400 << 20}, // past it: the live heap as headroom
		{4 << 30, 8 << 30},
	} {
		if got := heapLimit(tc.live); got != tc.want {
			t.Errorf("heapLimit(%d MiB) = %d MiB, want %d MiB", tc.live>>20, got>>20, tc.want>>20)
		}
	}
}
