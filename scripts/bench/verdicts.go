package main

import (
	"fmt"
	"math"
	"slices"
)

// Server names as reported.
const (
	nameOnair = "onair"
	nameNginx = "nginx-rtmp"
)

// Targets of the live benchmark (see BENCHMARKS.md).
const (
	targetLatencyRatio     = 0.1   // onair median latency / nginx-rtmp's
	targetLatencyMedianMS  = 300   // the absolute reading of that ratio
	targetLatencyP95MS     = 500   // onair p95 latency, absolute
	targetFirstFrameMS     = 1500  // onair first playable frame, absolute
	targetCPUPerStreamRat  = 1.0   // onair CPU per stream at the most publishers / nginx-rtmp's
	targetRSSPerStreamMB   = 5.0   // onair memory per live stream, absolute
	targetReqPerCPURatio   = 0.8   // onair requests per CPU second / nginx-rtmp's
	targetPublishersForCPU = 40    // the load level the CPU and memory targets apply to
	notMeasured            = "n/a" // a figure of a phase that failed
)

// verdictRow is one line of the targets table.
type verdictRow struct {
	Measure, Onair, Nginx, Ratio, Target, Verdict string
}

func verdict(ok, measured bool) string {
	switch {
	case !measured:
		return "not measured"
	case ok:
		return "met"
	default:
		return "**not met**"
	}
}

func findLatency(rs []latencyResult, server string) (latencyResult, bool) {
	i := slices.IndexFunc(rs, func(r latencyResult) bool { return r.Server == server })
	if i < 0 {
		return latencyResult{}, false
	}
	return rs[i], true
}

func findFirstFrame(rs []firstFrameResult, server string) (firstFrameResult, bool) {
	i := slices.IndexFunc(rs, func(r firstFrameResult) bool { return r.Server == server })
	if i < 0 || len(rs[i].RunsMS) == 0 {
		return firstFrameResult{}, false
	}
	return rs[i], true
}

func findLoad(rs []loadResult, server string, n int) (loadResult, bool) {
	i := slices.IndexFunc(rs, func(r loadResult) bool { return r.Server == server && r.Publishers == n })
	if i < 0 {
		return loadResult{}, false
	}
	return rs[i], true
}

func findViewers(rs []viewerResult, server string) (viewerResult, bool) {
	i := slices.IndexFunc(rs, func(r viewerResult) bool { return r.Server == server })
	if i < 0 {
		return viewerResult{}, false
	}
	return rs[i], true
}

// verdicts compares onair with nginx-rtmp against the targets.
func verdicts(r *liveResults) []verdictRow {
	var rows []verdictRow
	nan := math.NaN()

	lo, okO := findLatency(r.Latency, nameOnair)
	ln, okN := findLatency(r.Latency, nameNginx)
	om, nm, op95, np95 := nan, nan, nan, nan
	if okO {
		om, op95 = lo.MedianMS, lo.P95MS
	}
	if okN {
		nm, np95 = ln.MedianMS, ln.P95MS
	}
	lr := ratio(om, nm)
	rows = append(rows,
		verdictRow{"latency, median (ms)", fnum(om, 0), fnum(nm, 0), fratio(lr),
			fmt.Sprintf("≤ %.1fx nginx-rtmp", targetLatencyRatio), verdict(lr <= targetLatencyRatio, okO && okN)},
		verdictRow{"latency, median (ms), absolute", fnum(om, 0), fnum(nm, 0), fratio(lr),
			fmt.Sprintf("≤ %d ms", targetLatencyMedianMS), verdict(om <= targetLatencyMedianMS, okO)},
		verdictRow{"latency, p95 (ms)", fnum(op95, 0), fnum(np95, 0), fratio(ratio(op95, np95)),
			fmt.Sprintf("< %d ms", targetLatencyP95MS), verdict(op95 < targetLatencyP95MS, okO)},
	)

	fo, okO := findFirstFrame(r.FirstFrame, nameOnair)
	fn, okN := findFirstFrame(r.FirstFrame, nameNginx)
	ofm, nfm := nan, nan
	if okO {
		ofm = fo.MedianMS
	}
	if okN {
		nfm = fn.MedianMS
	}
	rows = append(rows, verdictRow{"first playable frame, median of runs (ms)", fnum(ofm, 0), fnum(nfm, 0),
		fratio(ratio(ofm, nfm)), fmt.Sprintf("≤ %d ms", targetFirstFrameMS), verdict(ofm <= targetFirstFrameMS, okO)})

	n := targetPublishersForCPU
	co, okO := findLoad(r.Load, nameOnair, n)
	cn, okN := findLoad(r.Load, nameNginx, n)
	oc, nc, orss, nrss := nan, nan, nan, nan
	memLabel := fmt.Sprintf("memory per stream at %d publishers (MB)", n)
	if okO {
		oc, orss = co.CPUPercentPerStream, memoryPerStream(co)
		if co.FullDVR != nil {
			memLabel = fmt.Sprintf("memory per stream at %d publishers, up to a full DVR window, peak (MB)", n)
		}
	}
	if okN {
		nc, nrss = cn.CPUPercentPerStream, memoryPerStream(cn)
	}
	cr := ratio(oc, nc)
	rows = append(rows,
		verdictRow{fmt.Sprintf("CPU per stream at %d publishers (%% of a core)", n), fnum(oc, 2), fnum(nc, 2), fratio(cr),
			fmt.Sprintf("≤ %.0fx nginx-rtmp", targetCPUPerStreamRat), verdict(cr <= targetCPUPerStreamRat, okO && okN)},
		verdictRow{memLabel, fnum(orss, 2), fnum(nrss, 2), fratio(ratio(orss, nrss)),
			fmt.Sprintf("< %.0f MB", targetRSSPerStreamMB), verdict(orss < targetRSSPerStreamMB, okO)},
	)

	vo, okO := findViewers(r.Viewers, nameOnair)
	vn, okN := findViewers(r.Viewers, nameNginx)
	ov, nv := nan, nan
	if okO {
		ov = vo.RequestsPerCPUS
	}
	if okN {
		nv = vn.RequestsPerCPUS
	}
	vr := ratio(ov, nv)
	rows = append(rows, verdictRow{"HLS requests per CPU second", fnum(ov, 0), fnum(nv, 0), fratio(vr),
		fmt.Sprintf("≥ %.1fx nginx-rtmp", targetReqPerCPURatio), verdict(vr >= targetReqPerCPURatio, okO && okN)})
	return rows
}

// memoryPerStream is the memory a stream costs: at the highest RSS seen up to a full DVR
// window when that was measured.
func memoryPerStream(l loadResult) float64 {
	if l.FullDVR != nil {
		return l.FullDVR.RSSMaxPerStreamMB
	}
	return l.RSSPerStreamMB
}
