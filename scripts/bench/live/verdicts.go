package live

import (
	"fmt"
	"math"
	"onair/scripts/bench/oldkit"
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

	lo, okO := findLatency(r.Latency, oldkit.NameOnair)
	ln, okN := findLatency(r.Latency, oldkit.NameNginx)
	om, nm, op95, np95 := nan, nan, nan, nan
	if okO {
		om, op95 = lo.MedianMS, lo.P95MS
	}
	if okN {
		nm, np95 = ln.MedianMS, ln.P95MS
	}
	lr := oldkit.Ratio(om, nm)
	rows = append(rows,
		verdictRow{"latency, median (ms)", oldkit.Fnum(om, 0), oldkit.Fnum(nm, 0), oldkit.Fratio(lr),
			fmt.Sprintf("≤ %.1fx nginx-rtmp", oldkit.TargetLatencyRatio), oldkit.Verdict(lr <= oldkit.TargetLatencyRatio, okO && okN)},
		verdictRow{"latency, median (ms), absolute", oldkit.Fnum(om, 0), oldkit.Fnum(nm, 0), oldkit.Fratio(lr),
			fmt.Sprintf("≤ %d ms", oldkit.TargetLatencyMedianMS), oldkit.Verdict(om <= oldkit.TargetLatencyMedianMS, okO)},
		verdictRow{"latency, p95 (ms)", oldkit.Fnum(op95, 0), oldkit.Fnum(np95, 0), oldkit.Fratio(oldkit.Ratio(op95, np95)),
			fmt.Sprintf("< %d ms", oldkit.TargetLatencyP95MS), oldkit.Verdict(op95 < oldkit.TargetLatencyP95MS, okO)},
	)

	fo, okO := findFirstFrame(r.FirstFrame, oldkit.NameOnair)
	fn, okN := findFirstFrame(r.FirstFrame, oldkit.NameNginx)
	ofm, nfm := nan, nan
	if okO {
		ofm = fo.MedianMS
	}
	if okN {
		nfm = fn.MedianMS
	}
	rows = append(rows, verdictRow{"first playable frame, median of runs (ms)", oldkit.Fnum(ofm, 0), oldkit.Fnum(nfm, 0),
		oldkit.Fratio(oldkit.Ratio(ofm, nfm)), fmt.Sprintf("≤ %d ms", oldkit.TargetFirstFrameMS), oldkit.Verdict(ofm <= oldkit.TargetFirstFrameMS, okO)})

	n := oldkit.TargetPublishersForCPU
	co, okO := findLoad(r.Load, oldkit.NameOnair, n)
	cn, okN := findLoad(r.Load, oldkit.NameNginx, n)
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
	cr := oldkit.Ratio(oc, nc)
	rows = append(rows,
		verdictRow{fmt.Sprintf("CPU per stream at %d publishers (%% of a core)", n), oldkit.Fnum(oc, 2), oldkit.Fnum(nc, 2), oldkit.Fratio(cr),
			fmt.Sprintf("≤ %.0fx nginx-rtmp", oldkit.TargetCPUPerStreamRat), oldkit.Verdict(cr <= oldkit.TargetCPUPerStreamRat, okO && okN)},
		verdictRow{memLabel, oldkit.Fnum(orss, 2), oldkit.Fnum(nrss, 2), oldkit.Fratio(oldkit.Ratio(orss, nrss)),
			fmt.Sprintf("< %.0f MB", oldkit.TargetRSSPerStreamMB), oldkit.Verdict(orss < oldkit.TargetRSSPerStreamMB, okO)},
	)

	vo, okO := findViewers(r.Viewers, oldkit.NameOnair)
	vn, okN := findViewers(r.Viewers, oldkit.NameNginx)
	ov, nv := nan, nan
	if okO {
		ov = vo.RequestsPerCPUS
	}
	if okN {
		nv = vn.RequestsPerCPUS
	}
	vr := oldkit.Ratio(ov, nv)
	rows = append(rows, verdictRow{"HLS requests per CPU second", oldkit.Fnum(ov, 0), oldkit.Fnum(nv, 0), oldkit.Fratio(vr),
		fmt.Sprintf("≥ %.1fx nginx-rtmp", oldkit.TargetReqPerCPURatio), oldkit.Verdict(vr >= oldkit.TargetReqPerCPURatio, okO && okN)})
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
