package record

import (
	"fmt"
	"math"
	"slices"

	"onair/scripts/bench/benchkit"
)

// Rules of the record benchmark's verdicts.
const (
	// outageFlatShare: RSS may rise during the outage (median of its last 10 s against
	// its first 10 s) by at most this share of what the spool grew by. Were the backlog
	// kept in memory, RSS would rise by all of it.
	outageFlatShare = 0.10
	// recordedSlackS: a recording is complete when it lasts at least what its publisher
	// sent minus this (ffmpeg's start and the RTMP handshake count as sent).
	recordedSlackS = 2.5
)

var f = benchkit.F

func section(r *results) string {
	b := r.Section("Recording: its cost, an S3 outage, and the time to a replay")
	fmt.Fprintf(b, "Input: `%s` (%.1f s, %.0f kbit/s), sent by one looping `ffmpeg -re -stream_loop -1 -i input.flv -c copy` per room (started 25 ms "+
		"apart). onair runs with the shipped defaults, FerretDB and MinIO on the same machine; each room is created through the API, and "+
		"`PATCH /api/v1/rooms/{slug} {\"recording\": false}` switches its recording off. CPU and RSS are onair's own, sampled every second.\n\n### Summary\n\n",
		r.Input.File, r.Input.Seconds, r.Input.BitrateKbps)
	var rows [][]string
	if len(r.Load) == 2 {
		off, on := r.Load[0], r.Load[1]
		rows = append(rows,
			[]string{fmt.Sprintf("CPU with recording on / off, %d streams", r.Streams),
				fmt.Sprintf("%s (%s → %s %% of a core)", benchkit.X(on.CPUPercent/off.CPUPercent), f(off.CPUPercent, 1), f(on.CPUPercent, 1)), "reported", "—"},
			[]string{"RSS (mean over the window) with recording on / off", fmt.Sprintf("%s (%s → %s MB: %+.2f MB per recording)",
				benchkit.X(on.RSSMeanMB/off.RSSMeanMB), f(off.RSSMeanMB, 1), f(on.RSSMeanMB, 1), (on.RSSMeanMB-off.RSSMeanMB)/float64(r.Streams)), "reported", "—"})
	}
	if o := r.Outage; o != nil && o.DrainS > 0 {
		rise, growth := o.RSSLateMB-o.RSSEarlyMB, o.SpoolEndMB-o.SpoolStartMB
		rows = append(rows,
			[]string{fmt.Sprintf("onair RSS during a %.0f s S3 outage", o.DownS),
				fmt.Sprintf("%s → %s MB (min %s, max %s); first 10 s → last 10 s (medians) %s → %s MB, %+.1f MB, while the spool grew by %.1f MB on disk",
					f(o.RSSStartMB, 1), f(o.RSSEndMB, 1), f(o.RSSMinMB, 1), f(o.RSSMaxMB, 1), f(o.RSSEarlyMB, 1), f(o.RSSLateMB, 1), rise, growth),
				fmt.Sprintf("flat: the rise ≤ %.0f %% of the spool's growth", 100*outageFlatShare), benchkit.Verdict(growth > 0 && rise <= outageFlatShare*growth, true)},
			[]string{"backlog uploaded after S3 came back", f(o.DrainS, 1) + " s", "reported", "—"})
	}
	if c := r.Completion; c != nil {
		worst := 0.0
		for i := range c.PublishedS {
			worst = max(worst, c.PublishedS[i]-c.RecordedS[i])
		}
		rows = append(rows, []string{"recordings through the outage",
			fmt.Sprintf("%d/%d with a replay %s s after the publishers left; each lasts what was sent within %.1f s", c.Complete, c.Rooms, f(c.WaitS, 1), worst),
			fmt.Sprintf("all complete (within %.1f s)", recordedSlackS), benchkit.Verdict(c.Complete == c.Rooms && worst <= recordedSlackS, true)})
	}
	if p := r.Replay; p != nil && len(p.RunsMS) > 0 {
		rows = append(rows, []string{fmt.Sprintf("publisher left → replay playlist 200 (%d runs)", len(p.RunsMS)),
			fmt.Sprintf("median %s ms, max %s ms", f(p.MedianMS, 0), f(p.MaxMS, 0)), "reported", "—"})
	}
	b.WriteString(benchkit.Table([]string{"measure", "figure", "target", "verdict"}, rows...))

	if len(r.Load) > 0 {
		fmt.Fprintf(b, "\n### Recording off and on\n\nEach on a fresh onair (the same FerretDB and MinIO; off first, then on): RSS 1 s after start "+
			"(*idle*), then %d publishers; window of %.0f s after a %.0f s warm-up. Go's heap at start is not returned to the system at once, so "+
			"compare the means. *Spool* is `onair_recording_spool_bytes` and `onair_recording_parts_pending` (chunks of the runs' fMP4 logs not "+
			"stored yet) from /metrics at the end of the window; `onair_recordings_in_progress` must be one per stream with recording on.\n\n",
			r.Streams, r.Load[0].WindowS, r.Load[0].WarmupS)
		rows = nil
		for _, l := range r.Load {
			rows = append(rows, []string{map[bool]string{false: "off", true: "on"}[l.Recording], fmt.Sprintf("%d/%d", l.Live, l.Streams), f(l.CPUPercent, 1),
				fmt.Sprintf("%s → %s (max %s)", f(l.RSSIdleMB, 1), f(l.RSSMeanMB, 1), f(l.RSSMaxMB, 1)), fmt.Sprintf("%s MB, %.0f files", f(l.SpoolMB, 1), l.SpoolParts), f(l.MachineBusy, 0)})
		}
		b.WriteString(benchkit.Table([]string{"recording", "streams live", "CPU % of a core", "RSS idle → mean (MB)", "spool", "machine busy %"}, rows...))
	}
	if o := r.Outage; o != nil && len(o.Samples) > 0 {
		fmt.Fprintf(b, "\n### S3 outage\n\nRight after the recording-on window, with the same %d streams going on, MinIO is killed (SIGKILL to its process group) "+
			"and started again %.0f s later on the same port and data. *Drained* is when no full chunk waited any more, counted from MinIO answering "+
			"ready again. GC makes single samples swing by 10 MB or more, so the trend is read from the medians of the first and last 10 s "+
			"(the summary above). From the kill to the restart: spool (/metrics) %s → %s MB in %.0f → %.0f chunk files; recordings directory "+
			"on disk %s → %s MB. RSS peaked at %s MB while draining; machine busy %s %%. Every 10 s (t from the kill):\n\n",
			r.Streams, o.DownS, f(o.SpoolStartMB, 1), f(o.SpoolEndMB, 1), o.PartsStart, o.PartsEnd, f(o.DiskStartMB, 1), f(o.DiskEndMB, 1),
			f(o.RSSDrainMaxMB, 1), f(o.MachineBusy, 0))
		rows, next := [][]string(nil), 0.0
		for i, s := range o.Samples {
			if s.AtS+0.5 >= next || i == len(o.Samples)-1 {
				rows = append(rows, []string{f(s.AtS, 0), s.Phase, f(s.RSSMB, 1), f(s.SpoolMB, 1), f(s.SpoolParts, 0)})
				next = math.Floor(s.AtS+0.5) + 10
			}
		}
		b.WriteString(benchkit.Table([]string{"t (s)", "S3", "RSS (MB)", "spool (MB)", "chunk files"}, rows...))
	}
	if c := r.Completion; c != nil {
		fmt.Fprintf(b, "\n### Publisher left → replay\n\nAfter the outage's backlog was uploaded, the %d publishers were stopped together (SIGTERM): %d/%d "+
			"broadcasts listed a replay whose playlist answered 200 within %s s. Sent (s): %s. Recorded (s): %s.\n\n",
			c.Rooms, c.Complete, c.Rooms, f(c.WaitS, 1), benchkit.Join(c.PublishedS, 1), benchkit.Join(c.RecordedS, 1))
	}
	if p := r.Replay; p != nil && len(p.RunsMS) > 0 {
		fmt.Fprintf(b, "Then, on the same onair with nothing else live, one room %d times: `ffmpeg -re -t %.0f -i input.flv -c copy` publishes and leaves "+
			"by itself; from its exit, `GET /api/v1/rooms/{slug}/broadcasts` every 50 ms until the new broadcast lists a `replay_url`, then that "+
			"playlist until it answers 200.\n\n", len(p.RunsMS), p.PublishS)
		b.WriteString(benchkit.Table([]string{"", "runs (ms)", "median (ms)", "max (ms)"},
			[]string{"replay_url listed", benchkit.Join(p.URLMS, 0), f(benchkit.Median(p.URLMS), 0), f(slices.Max(p.URLMS), 0)},
			[]string{"replay playlist 200", benchkit.Join(p.RunsMS, 0), f(p.MedianMS, 0), f(p.MaxMS, 0)}))
	}
	return b.String()
}
