package live

import (
	"fmt"
	"math"
	"onair/scripts/bench/benchkit"
	"slices"
)

// verdictRow is one line of the targets table.
type verdictRow struct {
	Measure, Onair, Nginx, Ratio, Target, Verdict string
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

	lo, okO := findLatency(r.Latency, benchkit.NameOnair)
	ln, okN := findLatency(r.Latency, benchkit.NameNginx)
	om, nm, op95, np95 := nan, nan, nan, nan
	if okO {
		om, op95 = lo.MedianMS, lo.P95MS
	}
	if okN {
		nm, np95 = ln.MedianMS, ln.P95MS
	}
	lr := benchkit.Ratio(om, nm)
	rows = append(rows,
		verdictRow{"latency, median (ms)", benchkit.Fnum(om, 0), benchkit.Fnum(nm, 0), benchkit.Fratio(lr),
			fmt.Sprintf("≤ %.1fx nginx-rtmp", benchkit.TargetLatencyRatio), benchkit.Verdict(lr <= benchkit.TargetLatencyRatio, okO && okN)},
		verdictRow{"latency, median (ms), absolute", benchkit.Fnum(om, 0), benchkit.Fnum(nm, 0), benchkit.Fratio(lr),
			fmt.Sprintf("≤ %d ms", benchkit.TargetLatencyMedianMS), benchkit.Verdict(om <= benchkit.TargetLatencyMedianMS, okO)},
		verdictRow{"latency, p95 (ms)", benchkit.Fnum(op95, 0), benchkit.Fnum(np95, 0), benchkit.Fratio(benchkit.Ratio(op95, np95)),
			fmt.Sprintf("< %d ms", benchkit.TargetLatencyP95MS), benchkit.Verdict(op95 < benchkit.TargetLatencyP95MS, okO)},
	)

	fo, okO := findFirstFrame(r.FirstFrame, benchkit.NameOnair)
	fn, okN := findFirstFrame(r.FirstFrame, benchkit.NameNginx)
	ofm, nfm := nan, nan
	if okO {
		ofm = fo.MedianMS
	}
	if okN {
		nfm = fn.MedianMS
	}
	rows = append(rows, verdictRow{"first playable frame, median of runs (ms)", benchkit.Fnum(ofm, 0), benchkit.Fnum(nfm, 0),
		benchkit.Fratio(benchkit.Ratio(ofm, nfm)), fmt.Sprintf("≤ %d ms", benchkit.TargetFirstFrameMS), benchkit.Verdict(ofm <= benchkit.TargetFirstFrameMS, okO)})

	n := benchkit.TargetPublishersForCPU
	co, okO := findLoad(r.Load, benchkit.NameOnair, n)
	cn, okN := findLoad(r.Load, benchkit.NameNginx, n)
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
	cr := benchkit.Ratio(oc, nc)
	rows = append(rows,
		verdictRow{fmt.Sprintf("CPU per stream at %d publishers (%% of a core)", n), benchkit.Fnum(oc, 2), benchkit.Fnum(nc, 2), benchkit.Fratio(cr),
			fmt.Sprintf("≤ %.0fx nginx-rtmp", benchkit.TargetCPUPerStreamRat), benchkit.Verdict(cr <= benchkit.TargetCPUPerStreamRat, okO && okN)},
		verdictRow{memLabel, benchkit.Fnum(orss, 2), benchkit.Fnum(nrss, 2), benchkit.Fratio(benchkit.Ratio(orss, nrss)),
			fmt.Sprintf("< %.0f MB", benchkit.TargetRSSPerStreamMB), benchkit.Verdict(orss < benchkit.TargetRSSPerStreamMB, okO)},
	)

	vo, okO := findViewers(r.Viewers, benchkit.NameOnair)
	vn, okN := findViewers(r.Viewers, benchkit.NameNginx)
	ov, nv := nan, nan
	if okO {
		ov = vo.RequestsPerCPUS
	}
	if okN {
		nv = vn.RequestsPerCPUS
	}
	vr := benchkit.Ratio(ov, nv)
	rows = append(rows, verdictRow{"HLS requests per CPU second", benchkit.Fnum(ov, 0), benchkit.Fnum(nv, 0), benchkit.Fratio(vr),
		fmt.Sprintf("≥ %.1fx nginx-rtmp", benchkit.TargetReqPerCPURatio), benchkit.Verdict(vr >= benchkit.TargetReqPerCPURatio, okO && okN)})
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
