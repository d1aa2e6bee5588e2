package benchkit

import (
	"math"
	"strings"
	"testing"
)

// TestReplaceSection: a section is replaced between its markers, text outside them is
// kept, a missing section is appended and broken markers are an error.
func TestReplaceSection(t *testing.T) {
	doc := "intro\n<!-- bench:a:start -->\nold\n<!-- bench:a:end -->\nhand-written\n"
	got, err := ReplaceSection(doc, "a", "new")
	if want := "intro\n<!-- bench:a:start -->\nnew\n<!-- bench:a:end -->\nhand-written\n"; err != nil || got != want {
		t.Errorf("replace: %q, %v; want %q", got, err, want)
	}
	if got, _ := ReplaceSection(doc, "b", "x"); !strings.HasSuffix(got, "hand-written\n\n<!-- bench:b:start -->\nx\n<!-- bench:b:end -->\n") {
		t.Errorf("append: %q", got)
	}
	if _, err := ReplaceSection("<!-- bench:a:end --> <!-- bench:a:start -->", "a", "x"); err == nil {
		t.Error("broken markers: no error")
	}
}

// TestStamp: the stamp NAL unit is found again in an access unit, whatever its digits,
// and holds no start code.
func TestStamp(t *testing.T) {
	for _, sent := range []int64{1, 1_700_000_000_000_000_000, 1_000_000_000_000_000_000} {
		nal := StampNAL(sent)
		if strings.Contains(string(nal), "\x00\x00") {
			t.Errorf("%d: the NAL unit needs emulation prevention: %x", sent, nal)
		}
		if f := InspectAU([][]byte{nal, {0x65, 0x88}}); f.Stamp != sent || !f.IDR {
			t.Errorf("%d: inspected %+v", sent, f)
		}
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if Median(xs) != 3 || Percentile(xs, 0) != 1 || Percentile(xs, 100) != 5 || Percentile(xs, 95) != 5 {
		t.Errorf("median %v, p0 %v, p95 %v", Median(xs), Percentile(xs, 0), Percentile(xs, 95))
	}
}

func TestPromByLabel(t *testing.T) {
	text := "# HELP x\nonair_hls_requests_total{kind=\"part\"} 3\nonair_hls_requests_total{kind=\"playlist\"} 2\nonair_hls_requests_total_x 9\nonair_spool 7\n"
	if m := PromByLabel(text, "onair_hls_requests_total"); m[`kind="part"`] != 3 || m[`kind="playlist"`] != 2 || len(m) != 2 {
		t.Errorf("by label: %v", m)
	}
	if v, ok := PromValue(text, "onair_spool"); !ok || v != 7 {
		t.Errorf("value: %v %v", v, ok)
	}
}

// TestLongestGap counts the edges of the window as gaps too.
func TestLongestGap(t *testing.T) {
	arrivals := []float64{0.5, 1, 1.2, 4, 4.1, 9}
	for _, tc := range []struct{ from, to, gap, at float64 }{{0, 5, 2.8, 1.2}, {4.1, 8, 3.9, 4.1}, {0, 1, 0.5, 0}} {
		if gap, at := LongestGap(arrivals, tc.from, tc.to); math.Abs(gap-tc.gap) > 1e-9 || at != tc.at {
			t.Errorf("[%v, %v): gap %v at %v, want %v at %v", tc.from, tc.to, gap, at, tc.gap, tc.at)
		}
	}
}
