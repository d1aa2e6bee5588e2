package main

import (
	"math"
	"strings"
	"testing"
)

func TestReplaceSection(t *testing.T) {
	doc := "# B\n\nintro\n\n<!-- bench:live:start -->\nold\n<!-- bench:live:end -->\n\n## hand-written\nkept\n"
	got, err := replaceSection(doc, "live", "new\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# B\n\nintro\n\n<!-- bench:live:start -->\nnew\n<!-- bench:live:end -->\n\n## hand-written\nkept\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	added, err := replaceSection("# B\n", "chat", "figures")
	if err != nil || added != "# B\n\n<!-- bench:chat:start -->\nfigures\n<!-- bench:chat:end -->\n" {
		t.Errorf("append: %q, %v", added, err)
	}
	if _, err := replaceSection("<!-- bench:live:end -->\n<!-- bench:live:start -->", "live", "x"); err == nil {
		t.Error("markers in the wrong order were accepted")
	}
}

func TestVerdicts(t *testing.T) {
	r := &liveResults{
		Latency:    []latencyResult{{Server: nameOnair, MedianMS: 250, P95MS: 450}, {Server: nameNginx, MedianMS: 3100, P95MS: 3500}},
		FirstFrame: []firstFrameResult{{Server: nameOnair, RunsMS: []float64{1600}, MedianMS: 1600}},
		Load: []loadResult{
			{Server: nameOnair, Publishers: 40, CPUPercentPerStream: 0.3, RSSPerStreamMB: 2},
			{Server: nameNginx, Publishers: 40, CPUPercentPerStream: 0.4, RSSPerStreamMB: 0.1},
		},
	}
	got := map[string]string{}
	for _, v := range verdicts(r) {
		got[v.Measure] = v.Verdict
	}
	want := map[string]string{
		"latency, median (ms)":                          "met",
		"latency, median (ms), absolute":                "met",
		"latency, p95 (ms)":                             "met",
		"first playable frame, median of runs (ms)":     "**not met**",
		"CPU per stream at 40 publishers (% of a core)": "met",
		"memory per stream at 40 publishers (MB)":       "met",
		"HLS requests per CPU second":                   "not measured",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
	if s := liveSection(r); !strings.Contains(s, "| latency, median (ms) | 250 | 3100 | 0.08x |") {
		t.Errorf("section lacks the latency row:\n%s", s)
	}
	if fnum(math.NaN(), 1) != notMeasured {
		t.Error("NaN is not shown as n/a")
	}
}
