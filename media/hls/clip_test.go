package hls

import (
	"testing"
	"time"
)

// TestClipSpan: a clip takes as few whole segments as cover the seconds asked, moved back
// to the nearest segment starting with a key frame.
func TestClipSpan(t *testing.T) {
	seg := func(d time.Duration, key bool) ReplaySegment { return ReplaySegment{Duration: d, Key: key} }
	s := time.Second
	allKeys := []ReplaySegment{seg(s, true), seg(s, true), seg(s, true), seg(s, true), seg(s, true)}
	sparse := []ReplaySegment{seg(s, true), seg(s, false), seg(s, false), seg(s, true), seg(s, false), seg(s, false)}
	noKeyFirst := []ReplaySegment{seg(s, false), seg(s, false), seg(s, true), seg(s, false)}
	for _, tc := range []struct {
		name  string
		segs  []ReplaySegment
		end   int
		want  time.Duration
		first int
	}{
		{"exact", allKeys, 5, 2 * s, 3},
		{"rounds up to whole segments", allKeys, 5, 2*s + time.Millisecond, 2},
		{"more than there is", allKeys, 5, 60 * s, 0},
		{"ending earlier (a replay position)", allKeys, 3, 2 * s, 1},
		{"back to a key frame", sparse, 6, 2 * s, 3},
		{"back past the window's start", sparse, 6, 4 * s, 0},
		{"no key frame before: from the first", noKeyFirst, 4, 60 * s, 2},
		{"nothing", nil, 0, 5 * s, 0},
		{"end past the list", allKeys, 9, s, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClipSpan(tc.segs, tc.end, tc.want); got != tc.first {
				t.Errorf("ClipSpan(end %d, %s) = %d, want %d", tc.end, tc.want, got, tc.first)
			}
		})
	}
}
