package live

import (
	"cmp"
	"fmt"
	"math"
	"strings"

	"onair/scripts/bench/benchkit"
)

// Targets of the live benchmark (issue 13's), onair against nginx-rtmp where a ratio.
const (
	targetLatencyMedianMS = 110 // ingest to arrival, 200 ms parts
	targetLatencyP95MS    = 220
	targetFirstFrameMS    = 500  // publish start to first playable frame, median
	targetCPURatio        = 0.75 // CPU per stream at targetPublishers / nginx-rtmp's
	targetRSSPerStreamMB  = 2.0  // memory per live stream with a full DVR window
	targetReqPerCPURatio  = 1.2  // HLS requests per CPU second / nginx-rtmp's
	targetPublishers      = 40   // the load the CPU and memory targets apply to
)

var f, x = benchkit.F, benchkit.X

// pair finds onair's and nginx-rtmp's result among rs and applies fig to both (NaN
// when missing); ok says which were found.
func pair[T any](rs []T, match func(T, string) bool, fig func(T) float64) (o, n float64, okO, okN bool) {
	o, n = math.NaN(), math.NaN()
	for _, r := range rs {
		if match(r, "onair") {
			o, okO = fig(r), true
		} else if match(r, "nginx-rtmp") {
			n, okN = fig(r), true
		}
	}
	return o, n, okO, okN
}

// cells renders one figure of each server with fmt, "n/a" when missing.
func cells[T any](rs []T, match func(T, string) bool, fmtr func(T) string) []string {
	out := []string{benchkit.NotMeasured, benchkit.NotMeasured}
	for _, r := range rs {
		if match(r, "onair") {
			out[0] = fmtr(r)
		} else if match(r, "nginx-rtmp") {
			out[1] = fmtr(r)
		}
	}
	return out
}

func section(r *results) string {
	b := r.Section("Live: onair and nginx-rtmp side by side")
	fmt.Fprintf(b, "Input (the same file for both servers): `%s`, %.1f s, %.0f kbit/s overall, encoded once with\n`%s`.\n\n### Targets\n\n",
		r.Input.File, r.Input.Seconds, r.Input.BitrateKbps, r.Input.Encode)
	latM := func(l latency, s string) bool { return l.Server == s }
	ffM := func(l firstFrame, s string) bool { return l.Server == s }
	loadM := func(l load, s string) bool { return l.Server == s && l.Publishers == targetPublishers }
	viewM := func(v viewers, s string) bool { return v.Server == s }
	om, nm, okO, _ := pair(r.Latency, latM, func(l latency) float64 { return l.MedianMS })
	op, np, _, _ := pair(r.Latency, latM, func(l latency) float64 { return l.P95MS })
	of, nf, okF, _ := pair(r.FirstFrame, ffM, func(l firstFrame) float64 { return l.MedianMS })
	oc, nc, okC, okCN := pair(r.Load, loadM, func(l load) float64 { return l.CPUPercentPerStream })
	memory := func(l load) float64 { // at the highest RSS seen up to a full DVR window when measured
		if l.FullDVR != nil {
			return l.FullDVR.RSSMaxPerStreamMB
		}
		return l.RSSPerStreamMB
	}
	or, nr, okR, _ := pair(r.Load, loadM, memory)
	ov, nv, okV, okVN := pair(r.Viewers, viewM, func(v viewers) float64 { return v.RequestsPerCPUS })
	row := func(measure string, o, n float64, dec int, target string, ok, measured bool) []string {
		return []string{measure, f(o, dec), f(n, dec), x(o / n), target, benchkit.Verdict(ok, measured)}
	}
	memLabel := fmt.Sprintf("memory per stream at %d publishers, up to a full DVR window, peak (MB)", targetPublishers)
	b.WriteString(benchkit.Table([]string{"measure", "onair", "nginx-rtmp", "onair / nginx-rtmp", "target", "verdict"},
		row("latency, median (ms)", om, nm, 0, fmt.Sprintf("≤ %d ms", targetLatencyMedianMS), om <= targetLatencyMedianMS, okO),
		row("latency, p95 (ms)", op, np, 0, fmt.Sprintf("≤ %d ms", targetLatencyP95MS), op <= targetLatencyP95MS, okO),
		row("first playable frame, median of runs (ms)", of, nf, 0, fmt.Sprintf("≤ %d ms", targetFirstFrameMS), of <= targetFirstFrameMS, okF),
		row(fmt.Sprintf("CPU per stream at %d publishers (%% of a core)", targetPublishers), oc, nc, 2, fmt.Sprintf("≤ %.2fx nginx-rtmp", targetCPURatio), oc/nc <= targetCPURatio, okC && okCN),
		row(memLabel, or, nr, 2, fmt.Sprintf("≤ %.0f MB", targetRSSPerStreamMB), or <= targetRSSPerStreamMB, okR),
		row("HLS requests per CPU second", ov, nv, 0, fmt.Sprintf("≥ %.1fx nginx-rtmp", targetReqPerCPURatio), ov/nv >= targetReqPerCPURatio, okV && okVN)))

	b.WriteString("\n### Ingest-to-player latency\n\nEach video frame carries an SEI stamp of the time the RTMP publisher sent it; " +
		"latency = arrival of the part or segment holding it − that time, on one clock, before any player hold-back.\n\n")
	lat := func(label string, fm func(latency) string) []string {
		return append([]string{label}, cells(r.Latency, latM, fm)...)
	}
	b.WriteString(benchkit.Table([]string{"", "onair", "nginx-rtmp"},
		lat("player", func(l latency) string { return l.Player }),
		lat("window", func(l latency) string { return fmt.Sprintf("%.0f s after a %.0f s warm-up", l.WindowS, l.WarmupS) }),
		lat("frames received / sent in the window", func(l latency) string { return fmt.Sprintf("%d / %d", l.Frames, l.FramesSent) }),
		lat("min / max (ms)", func(l latency) string { return f(l.MinMS, 0) + " / " + f(l.MaxMS, 0) }),
		lat("downloads (failed)", func(l latency) string { return fmt.Sprintf("%d (%d)", l.Fetches, l.FetchErrors) }),
		lat("machine busy", func(l latency) string { return f(l.MachineBusy, 0) + " %" })))

	b.WriteString("\n### Publish start to first playable frame\n\nFrom the publisher's first byte to the arrival of the first part " +
		"or segment holding an IDR picture; the player polls the playlist every 50 ms from the same moment. A new stream each run.\n\n")
	b.WriteString(benchkit.Table([]string{"", "onair", "nginx-rtmp"},
		append([]string{"runs (ms)"}, cells(r.FirstFrame, ffM, func(l firstFrame) string { return benchkit.Join(l.RunsMS, 0) })...)))

	b.WriteString("\n### Publishers: server CPU and memory\n\nN looping `ffmpeg -re -stream_loop -1 -i input.flv -c copy -f flv rtmp://…` " +
		"publishers (25 ms apart) on a fresh server; CPU and RSS (every second) of the server's processes over the window after the warm-up. " +
		"MB per stream = (mean RSS − idle RSS before the first publisher) / N; *disk* is the segments held at the end.\n\n")
	var rows, full [][]string
	for _, l := range r.Load {
		live := fmt.Sprintf("%d/%d", l.Live, l.Publishers)
		if l.Dropped > 0 {
			live += fmt.Sprintf(" (**%d dropped**: %s)", l.Dropped, strings.ReplaceAll(l.DropDetail, "\n", " "))
		}
		rows = append(rows, []string{fmt.Sprint(l.Publishers), l.Server, live, f(l.CPUPercent, 1), f(l.CPUPercentPerStream, 2),
			fmt.Sprintf("%s → %s (max %s)", f(l.RSSIdleMB, 1), f(l.RSSMeanMB, 1), f(l.RSSMaxMB, 1)), f(l.RSSPerStreamMB, 2),
			f(l.RSSGrowthMBPerMin, 1), f(l.DiskMB, 0), f(l.FFmpegCPUPercent, 0), f(l.MachineBusy, 0)})
		if d := l.FullDVR; d != nil {
			full = append(full, []string{fmt.Sprint(l.Publishers), l.Server, f(d.AfterS, 0), fmt.Sprintf("%s → %s (max %s)", f(l.RSSIdleMB, 1), f(d.RSSMB, 1), f(d.RSSMaxMB, 1)),
				fmt.Sprintf("%s (peak %s)", f(d.RSSPerStreamMB, 2), f(d.RSSMaxPerStreamMB, 2)), f(d.DiskMB, 0), f(d.CPUPercent, 1)})
		}
	}
	b.WriteString(benchkit.Table([]string{"publishers", "server", "streams live", "CPU % of a core", "CPU % per stream", "RSS idle → mean (MB)",
		"MB per stream", "RSS growth (MB/min)", "disk (MB)", "ffmpeg CPU % of a core", "machine busy %"}, rows...))
	if len(r.Load) > 0 {
		fmt.Fprintf(b, "\nWindow: %.0f s after a %.0f s warm-up.\n", r.Load[0].WindowS, r.Load[0].WarmupS)
	}
	if len(full) > 0 {
		b.WriteString("\nAt the largest count, once the 2 min DVR window (nginx-rtmp: playlist) was full; the memory target reads the peak:\n\n")
		b.WriteString(benchkit.Table([]string{"publishers", "server", "seconds after the last publisher started", "RSS idle → now (MB)",
			"MB per stream now (peak)", "disk (MB)", "CPU % of a core since the window"}, full...))
	}

	b.WriteString("\n### Many viewers of one stream\n\nOne publisher; each wrk connection alternates the media playlist and the newest " +
		"complete segment. wrk shares the cores, so requests per *server* CPU second is the comparable figure.\n\n")
	view := func(label string, fm func(viewers) string, fig func(viewers) float64) []string {
		out := append([]string{label}, cells(r.Viewers, viewM, fm)...)
		if fig == nil {
			return append(out, "")
		}
		o, n, _, _ := pair(r.Viewers, viewM, fig)
		return append(out, x(o/n))
	}
	b.WriteString(benchkit.Table([]string{"", "onair", "nginx-rtmp", "onair / nginx-rtmp"},
		view("command", func(v viewers) string { return "`" + v.Command + "`" }, nil),
		view("paths", func(v viewers) string { return "`" + strings.Join(v.Paths, "`, `") + "`" }, nil),
		view("segment size (bytes)", func(v viewers) string { return fmt.Sprint(v.SegmentBytes) }, nil),
		view("requests/s", func(v viewers) string { return f(v.RPS, 0) }, func(v viewers) float64 { return v.RPS }),
		view("server CPU % of a core (before the load)", func(v viewers) string { return f(v.CPUPercent, 0) + " (" + f(v.BaselineCPU, 1) + ")" }, nil),
		view("latency p50 / p99", func(v viewers) string { return v.LatencyP50 + " / " + v.LatencyP99 }, nil),
		view("transfer/s", func(v viewers) string { return v.BytesPerSec }, nil),
		view("errors (non-2xx; socket)", func(v viewers) string { return fmt.Sprintf("%d; %s", v.Non2xx, cmp.Or(v.SocketErrs, "none")) }, nil),
		view("machine busy", func(v viewers) string { return f(v.MachineBusy, 0) + " %" }, nil)))
	return b.String()
}
