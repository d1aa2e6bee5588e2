package ladder

import (
	"fmt"
	"math"
	"strings"

	"onair/scripts/bench/benchkit"
)

// seconds are the measured times of a switch phase, in seconds (runs that timed out are
// left out), and how many runs timed out.
func seconds(ms []*float64) (s []float64, missed int) {
	for _, v := range ms {
		if v == nil {
			missed++
			continue
		}
		s = append(s, *v/1000)
	}
	return s, missed
}

// rssGrowth is how much onair's mean RSS grows per rendition added to the single one, in
// MB.
func rssGrowth(single, ladder *cost) float64 {
	return benchkit.Ratio((float64(ladder.RSSMean)-float64(single.RSSMean))/benchkit.MB, float64(len(ladder.Rungs)-len(single.Rungs)))
}

func describe(rungs []rung) string {
	var s []string
	for _, g := range rungs {
		name := "main"
		if g.Name != "" {
			name = "`?rendition=" + g.Name + "`"
		}
		s = append(s, fmt.Sprintf("%s %s %d kbit/s", name, g.Size, g.Kbps))
	}
	return strings.Join(s, " + ")
}

func section(r *results) string {
	b := r.Section("Ladder: renditions without a transcoder")
	fmt.Fprintf(b, "Issue 14: a simulcast ladder (each rendition a publish of the same key with `?rendition=<name>`) against one rendition "+
		"at the same total video bit rate. The inputs are encoded once, 20 s each with the same key frames (one every 30 frames) "+
		"and AAC 96 kbit/s: `%s`. Each configuration runs on a fresh onair (`ONAIR_STREAMS`, no database), published by one "+
		"`ffmpeg` reading each rung's input (`-re -stream_loop -1 … -c copy`), one FLV output per rung, so that nothing is encoded "+
		"while measuring; %d LL-HLS players per rendition (benchkit's player: blocking playlist reloads, every part fetched) "+
		"count the bytes they receive. After %.0f s of warm-up, onair's CPU (utime + stime) and RSS over the window; "+
		"*CPU per delivered MB* is onair's CPU seconds over the MB the players received.\n\n",
		r.Encode, r.Viewers, r.WarmupS)
	if r.Single != nil && r.Ladder != nil {
		s, l := r.Single, r.Ladder
		ratio := benchkit.Ratio(l.CPUPerMB(), s.CPUPerMB())
		b.WriteString("### Targets\n\n" + benchkit.Table([]string{"measure", "figure", "target", "verdict"},
			[]string{"ladder's CPU per delivered byte ÷ single rendition's", benchkit.X(ratio),
				fmt.Sprintf("at most %.1fx", targetRatio), benchkit.Verdict(ratio <= targetRatio, !math.IsNaN(ratio))},
			[]string{"RSS growth per added rendition", benchkit.F(rssGrowth(s, l), 1) + " MB", "reported", "—"}))
		b.WriteString("\n")
		var rows [][]string
		for _, c := range []struct {
			name string
			c    *cost
		}{{"single: " + describe(s.Rungs), s}, {"ladder: " + describe(l.Rungs), l}} {
			rows = append(rows, []string{c.name, fmt.Sprint(c.c.Players), benchkit.F(float64(c.c.DeliveredBytes)/benchkit.MB, 1),
				benchkit.F(c.c.CPUSeconds, 2), benchkit.F(c.c.CPUPercent, 1), benchkit.F(c.c.CPUPerMB(), 4),
				benchkit.F(float64(c.c.RSSMean)/benchkit.MB, 1), benchkit.F(c.c.RSSPerRendition(), 1), benchkit.F(c.c.Busy, 0)})
		}
		b.WriteString(benchkit.Table([]string{"configuration", "players", "delivered MB", "onair CPU s", "CPU, % of a core",
			"CPU s per delivered MB", "RSS mean (MB)", "RSS per rendition (MB, above the RSS before the publish)", "machine busy %"}, rows...))
		fmt.Fprintf(b, "\nWindow: %.0f s each. RSS before the publish: %.1f MB (single), %.1f MB (ladder).\n\n",
			s.Wall.Seconds(), float64(s.BaseRSS)/benchkit.MB, float64(l.BaseRSS)/benchkit.MB)
	}
	if sw := r.Switch; sw != nil {
		var names []string
		for _, l := range sw.Levels {
			names = append(names, l.Name)
		}
		var down, lowest, up []*float64
		for _, run := range sw.Runs {
			down, lowest, up = append(down, run.DownMS), append(lowest, run.LowestMS), append(up, run.UpMS)
		}
		fmt.Fprintf(b, "### Switch down\n\nBrowser: %s, headless. On the ladder's node once the players have left, `%s` opens the watch page "+
			"(hls.js, quality Auto; levels %s) in a fresh browser context per run, waits until hls.js has played the top rendition "+
			"for 2 s, throttles the page's network to %d kbit/s (Chrome DevTools Protocol `Network.emulateNetworkConditions`, 20 ms latency: "+
			"under what the second rung needs with the audio, over the lowest's), and times LEVEL_SWITCHED (the player's `data-level`, "+
			"polled every 50 ms) from the throttle's start; then lifts the throttle and times the way back to the top. No target in the issue.\n\n",
			r.Chromium, r.SwitchCmd, strings.Join(names, ", "), sw.ThrottleKbps)
		var rows [][]string
		for _, p := range []struct {
			name string
			ms   []*float64
		}{{"throttle → first switch down", down}, {"throttle → lowest rendition", lowest}, {"throttle lifted → back on the top", up}} {
			s, missed := seconds(p.ms)
			miss := ""
			if missed > 0 {
				miss = fmt.Sprintf(" (%d run(s) timed out)", missed)
			}
			rows = append(rows, []string{p.name, benchkit.F(benchkit.Median(s), 1), benchkit.Join(s, 1) + miss})
		}
		b.WriteString(benchkit.Table([]string{"phase", "median (s)", "runs (s)"}, rows...))
	}
	return b.String()
}
