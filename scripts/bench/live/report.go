package live

import (
	"fmt"
	"onair/scripts/bench/oldkit"
	"strings"
)

// liveCell is "live/N", with the publishers the server dropped.
func liveCell(l loadResult) string {
	s := fmt.Sprintf("%d/%d", l.Live, l.Publishers)
	if l.Dropped > 0 {
		s += fmt.Sprintf(" (**%d dropped**)", l.Dropped)
	}
	return s
}

// liveSection renders the BENCHMARKS.md section of a live run (without its markers).
func liveSection(r *liveResults) string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "## Live: onair and nginx-rtmp side by side\n\n")
	fmt.Fprintf(&b, "Produced by `%s` on %s (finished %s).\n\n", r.Command, r.Started, r.Finished)
	fmt.Fprintf(&b, "Machine: %d cores (`nproc`), %s, Linux %s (`uname -r`), %s, %s, %s. "+
		"Load average (1, 5, 15 min) %s at the start, %s at the end; *machine busy* below is the whole "+
		"machine's CPU use during a measurement, in %% of all cores, the server's and the load's included: "+
		"anything well above what the benchmark itself explains means other work was running.\n\n",
		m.CPUs, m.CPUModel, m.Kernel, m.Go, m.FFmpeg, m.Nginx, m.LoadStart, m.LoadEnd)
	b.WriteString(r.Onair.Line())
	fmt.Fprintf(&b, "Input (the same file for both servers): `%s`, %.1f s, %.0f kbit/s overall, encoded once with\n`%s`.\n\n",
		r.Input.File, r.Input.Seconds, r.Input.BitrateKbps, r.Input.Encode)
	oldkit.RunErrors(&b, r.Errors)

	b.WriteString("### Targets\n\n")
	var rows [][]string
	for _, v := range verdicts(r) {
		rows = append(rows, []string{v.Measure, v.Onair, v.Nginx, v.Ratio, v.Target, v.Verdict})
	}
	b.WriteString(oldkit.Table([]string{"measure", oldkit.NameOnair, oldkit.NameNginx, "onair / nginx-rtmp", "target", "verdict"}, rows))

	b.WriteString("\n### Ingest-to-player latency\n\n")
	b.WriteString("Every video frame carries an SEI (user data unregistered) with the wall-clock time at which the " +
		"benchmark's RTMP publisher sent it; the player notes when each part or segment has fully arrived and finds " +
		"the stamps in it. Latency = arrival − send time, on the same clock. This is when a frame *reaches* the " +
		"player, not when it is shown: a player adds its own hold-back on top (hls.js keeps 3 target durations " +
		"behind the live edge of classic HLS, and PART-HOLD-BACK behind LL-HLS).\n\n")
	lo, okO := findLatency(r.Latency, oldkit.NameOnair)
	ln, okN := findLatency(r.Latency, oldkit.NameNginx)
	latRow := func(label string, f func(latencyResult) string) []string {
		o, n := oldkit.NotMeasured, oldkit.NotMeasured
		if okO {
			o = f(lo)
		}
		if okN {
			n = f(ln)
		}
		return []string{label, o, n}
	}
	b.WriteString(oldkit.Table([]string{"", oldkit.NameOnair, oldkit.NameNginx}, [][]string{
		latRow("player", func(l latencyResult) string { return l.Player }),
		latRow("window", func(l latencyResult) string {
			return fmt.Sprintf("%.0f s after a %.0f s warm-up", l.WindowS, l.WarmupS)
		}),
		latRow("frames received / sent in the window", func(l latencyResult) string { return fmt.Sprintf("%d / %d", l.Frames, l.FramesSent) }),
		latRow("median (ms)", func(l latencyResult) string { return oldkit.Fnum(l.MedianMS, 0) }),
		latRow("p95 (ms)", func(l latencyResult) string { return oldkit.Fnum(l.P95MS, 0) }),
		latRow("min / max (ms)", func(l latencyResult) string { return oldkit.Fnum(l.MinMS, 0) + " / " + oldkit.Fnum(l.MaxMS, 0) }),
		latRow("downloads (failed)", func(l latencyResult) string { return fmt.Sprintf("%d (%d)", l.Fetches, l.FetchErrors) }),
		latRow("machine busy", func(l latencyResult) string { return oldkit.Fnum(l.MachineBusy, 0) + " %" }),
	}))

	b.WriteString("\n### Publish start to first playable frame\n\n")
	b.WriteString("From the publisher's first byte (TCP connect of the RTMP handshake) to the arrival of the first part or " +
		"segment holding an IDR picture. The player starts at the same moment, asking for the playlist every 50 ms while " +
		"it is 404 (onair: also 503), then joins at the live edge (onair: the newest independent part, after the init " +
		"section; nginx-rtmp: the newest segment). Each run publishes a new stream.\n\n")
	ffRow := func(label string, f func(firstFrameResult) string) []string {
		out := []string{label}
		for _, s := range []string{oldkit.NameOnair, oldkit.NameNginx} {
			if x, ok := findFirstFrame(r.FirstFrame, s); ok {
				out = append(out, f(x))
			} else {
				out = append(out, oldkit.NotMeasured)
			}
		}
		return out
	}
	b.WriteString(oldkit.Table([]string{"", oldkit.NameOnair, oldkit.NameNginx}, [][]string{
		ffRow("runs (ms)", func(x firstFrameResult) string {
			s := make([]string, len(x.RunsMS))
			for i, v := range x.RunsMS {
				s[i] = oldkit.Fnum(v, 0)
			}
			return strings.Join(s, ", ")
		}),
		ffRow("median (ms)", func(x firstFrameResult) string { return oldkit.Fnum(x.MedianMS, 0) }),
	}))

	b.WriteString("\n### Publishers: server CPU and memory\n\n")
	b.WriteString("N looping `ffmpeg -re -stream_loop -1 -i input.flv -c copy -f flv rtmp://…` publishers (started 25 ms " +
		"apart) on a fresh server; CPU (utime + stime from /proc/<pid>/stat) and RSS (VmRSS, sampled every second) " +
		"of the server's processes (nginx: all of them, master and workers) over the window after the warm-up. " +
		"Per-stream memory is (mean RSS − idle RSS) / N, idle RSS being measured before the first publisher. Both servers " +
		"keep finished segments on disk (page cache, not RSS); *disk* is what they held at the end of the window. The 2 min " +
		"DVR window (playlist) is not full yet then, so *RSS growth* shows whether memory still rises; the next table " +
		"follows it until the window is full. The ffmpeg publishers' own CPU is listed apart: it is the same load for both " +
		"servers.\n\n")
	var lrows [][]string
	for _, l := range r.Load {
		lrows = append(lrows, []string{
			fmt.Sprint(l.Publishers), l.Server, liveCell(l),
			oldkit.Fnum(l.CPUPercent, 1), oldkit.Fnum(l.CPUPercentPerStream, 2),
			oldkit.Fnum(l.RSSIdleMB, 1) + " → " + oldkit.Fnum(l.RSSMeanMB, 1) + " (max " + oldkit.Fnum(l.RSSMaxMB, 1) + ")",
			oldkit.Fnum(l.RSSPerStreamMB, 2), oldkit.Fnum(l.RSSGrowthMBPerMin, 1), oldkit.Fnum(l.DiskMB, 0),
			oldkit.Fnum(l.FFmpegCPUPercent, 0), oldkit.Fnum(l.MachineBusy, 0),
		})
	}
	b.WriteString(oldkit.Table([]string{"publishers", "server", "streams live", "CPU % of a core", "CPU % per stream",
		"RSS idle → mean (MB)", "MB per stream", "RSS growth (MB/min)", "disk (MB)", "ffmpeg CPU % of a core", "machine busy %"}, lrows))
	if len(r.Load) > 0 {
		fmt.Fprintf(&b, "\nWindow: %.0f s after a %.0f s warm-up.\n", r.Load[0].WindowS, r.Load[0].WarmupS)
	}
	var frows [][]string
	for _, l := range r.Load {
		if f := l.FullDVR; f != nil {
			frows = append(frows, []string{fmt.Sprint(l.Publishers), l.Server, oldkit.Fnum(f.AfterS, 0),
				oldkit.Fnum(l.RSSIdleMB, 1) + " → " + oldkit.Fnum(f.RSSMB, 1) + " (max " + oldkit.Fnum(f.RSSMaxMB, 1) + ")",
				oldkit.Fnum(f.RSSPerStreamMB, 2) + " (peak " + oldkit.Fnum(f.RSSMaxPerStreamMB, 2) + ")", oldkit.Fnum(f.DiskMB, 0), oldkit.Fnum(f.CPUPercent, 1)})
		}
	}
	for _, l := range r.Load {
		if l.Dropped > 0 {
			fmt.Fprintf(&b, "\n**%s dropped %d of %d publishers** during the %d-publisher measurement: %s\n",
				l.Server, l.Dropped, l.Publishers, l.Publishers, strings.ReplaceAll(l.DropDetail, "\n", " "))
		}
	}
	if len(frows) > 0 {
		b.WriteString("\nAt the largest publisher count the same servers kept publishing until the time below (by default 130 s: " +
			"onair's 2 min DVR window and nginx-rtmp's 2 min playlist are full by then). The memory target is read from " +
			"here, at the highest RSS seen since the window (GC cycles make RSS swing):\n\n")
		b.WriteString(oldkit.Table([]string{"publishers", "server", "seconds after the last publisher started", "RSS idle → now (MB)",
			"MB per stream now (peak)", "disk (MB)", "CPU % of a core since the window"}, frows))
	}

	b.WriteString("\n### Many viewers of one stream\n\n")
	b.WriteString("One looping ffmpeg publisher; wrk's connections each alternate between the stream's media playlist " +
		"(onair: the LL-HLS video playlist as a player first loads it, without blocking parameters) and its newest " +
		"complete segment (about 1 s of video), as many viewers of one stream do. wrk runs on the same 2 cores, so " +
		"requests per second are bounded by the machine; requests per second of *server* CPU is the comparable figure.\n\n")
	vo, okO := findViewers(r.Viewers, oldkit.NameOnair)
	vn, okN := findViewers(r.Viewers, oldkit.NameNginx)
	vRow := func(label string, f func(viewerResult) string, rat func(o, n viewerResult) string) []string {
		o, n, q := oldkit.NotMeasured, oldkit.NotMeasured, ""
		if okO {
			o = f(vo)
		}
		if okN {
			n = f(vn)
		}
		if okO && okN && rat != nil {
			q = rat(vo, vn)
		}
		return []string{label, o, n, q}
	}
	b.WriteString(oldkit.Table([]string{"", oldkit.NameOnair, oldkit.NameNginx, "onair / nginx-rtmp"}, [][]string{
		vRow("command", func(v viewerResult) string { return "`" + v.Command + "`" }, nil),
		vRow("paths", func(v viewerResult) string { return "`" + strings.Join(v.Paths, "`, `") + "`" }, nil),
		vRow("segment size (bytes)", func(v viewerResult) string { return fmt.Sprint(v.SegmentBytes) }, nil),
		vRow("requests/s", func(v viewerResult) string { return oldkit.Fnum(v.RPS, 0) },
			func(o, n viewerResult) string { return oldkit.Fratio(oldkit.Ratio(o.RPS, n.RPS)) }),
		vRow("server CPU % of a core (before the load)", func(v viewerResult) string {
			return oldkit.Fnum(v.CPUPercent, 0) + " (" + oldkit.Fnum(v.BaselineCPU, 1) + ")"
		}, nil),
		vRow("requests per server CPU second", func(v viewerResult) string { return oldkit.Fnum(v.RequestsPerCPUS, 0) },
			func(o, n viewerResult) string {
				return oldkit.Fratio(oldkit.Ratio(o.RequestsPerCPUS, n.RequestsPerCPUS))
			}),
		vRow("latency p50 / p99", func(v viewerResult) string { return v.LatencyP50 + " / " + v.LatencyP99 }, nil),
		vRow("transfer/s", func(v viewerResult) string { return v.TransferPerSec }, nil),
		vRow("errors (non-2xx; socket)", func(v viewerResult) string {
			s := v.SocketErrors
			if s == "" {
				s = "none"
			}
			return fmt.Sprintf("%d; %s", v.Non2xx, s)
		}, nil),
		vRow("machine busy", func(v viewerResult) string { return oldkit.Fnum(v.MachineBusy, 0) + " %" }, nil),
	}))
	return b.String()
}
