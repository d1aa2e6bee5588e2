package main

import (
	"strings"
	"testing"
)

// TestIdleSection: the verdict is on onair and FerretDB together.
func TestIdleSection(t *testing.T) {
	for _, tc := range []struct {
		onair, ferret float64
		verdict       string
	}{
		{0.3, 0.5, "met"},
		{0.3, 0.8, "not met"},
	} {
		r := &idleResults{Procs: []idleProc{{Name: "onair"}, {Name: nameFerret}}}
		r.Procs[0].CPUPercent, r.Procs[1].CPUPercent = tc.onair, tc.ferret
		if s := idleSection(r); !strings.Contains(s, "at most 1 % of a core: **"+tc.verdict+"**") {
			t.Errorf("%.1f + %.1f %%: want %s in\n%s", tc.onair, tc.ferret, tc.verdict, s)
		}
	}
}
