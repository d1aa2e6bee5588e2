package ladder

import (
	"math"
	"testing"

	"onair/scripts/bench/benchkit"
)

func TestCostFigures(t *testing.T) {
	s := &cost{Rungs: single, DeliveredBytes: 100 * benchkit.MB, BaseRSS: 20 * benchkit.MB, Usage: benchkit.Usage{CPUSeconds: 5, RSSMean: 30 * benchkit.MB}}
	l := &cost{Rungs: ladder, DeliveredBytes: 200 * benchkit.MB, BaseRSS: 20 * benchkit.MB, Usage: benchkit.Usage{CPUSeconds: 12, RSSMean: 44 * benchkit.MB}}
	if got := s.CPUPerMB(); got != 0.05 {
		t.Errorf("single CPU per MB %v, want 0.05", got)
	}
	if got := l.CPUPerMB() / s.CPUPerMB(); math.Abs(got-1.2) > 1e-9 {
		t.Errorf("ratio %v, want 1.2", got)
	}
	if got := l.RSSPerRendition(); got != 8 {
		t.Errorf("RSS per rendition %v MB, want 8", got)
	}
	if got := rssGrowth(s, l); got != 7 {
		t.Errorf("RSS growth per added rendition %v MB, want 7", got)
	}
	if got := (&cost{Rungs: single}).CPUPerMB(); !math.IsNaN(got) {
		t.Errorf("CPU per MB with nothing delivered: %v, want NaN", got)
	}
	v := 1500.0
	s2, missed := seconds([]*float64{&v, nil})
	if len(s2) != 1 || s2[0] != 1.5 || missed != 1 {
		t.Errorf("seconds: %v, %d missed", s2, missed)
	}
}
