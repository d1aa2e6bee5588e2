package record

import (
	"fmt"
	"math"
	"onair/scripts/bench/oldkit"
	"strings"
)

// Rules of the record benchmark's verdicts.
const (
	// outageFlatShare: RSS may rise during the outage (median of its last 10 s against
	// median of its first 10 s, so that one GC swing does not count) by at most this share
	// of what the spool grew by. Were the backlog kept in memory, RSS would rise by all of
	// it.
	outageFlatShare = 0.10
	// recordedSlackS: a recording is complete when it lasts at least what its publisher
	// sent minus this (ffmpeg's start and the RTMP handshake count as sent).
	recordedSlackS = 2.5
)

// outageFlat applies the outage rule: how much RSS rose (median of the last 10 s −
// median of the first 10 s) against how much the spool grew.
func outageFlat(o *outageResult) (flat bool, riseMB, spoolGrowthMB float64) {
	riseMB = o.RSSLateMB - o.RSSEarlyMB
	spoolGrowthMB = o.SpoolEndMB - o.SpoolStartMB
	return spoolGrowthMB > 0 && riseMB <= outageFlatShare*spoolGrowthMB, riseMB, spoolGrowthMB
}

// completionOK says whether every recording through the outage has a replay and lasts
// what its publisher sent, and the largest shortfall.
func completionOK(c *completionResult) (ok bool, worstShortS float64) {
	for i := range c.PublishedS {
		if i < len(c.RecordedS) {
			worstShortS = max(worstShortS, c.PublishedS[i]-c.RecordedS[i])
		}
	}
	return c.Complete == c.Rooms && worstShortS <= recordedSlackS, worstShortS
}

func findRecordLoad(ls []recordLoad, recording bool) (recordLoad, bool) {
	for _, l := range ls {
		if l.Recording == recording {
			return l, true
		}
	}
	return recordLoad{}, false
}

// recordSection renders the BENCHMARKS.md section of a record run (without its markers).
func recordSection(r *recordResults) string {
	var b strings.Builder
	oldkit.RigSectionHead(&b, "Recording: its cost, an S3 outage, and the time to a replay", r.Command, r.Started, r.Finished, r.Machine, r.Onair)
	fmt.Fprintf(&b, "Input: the live benchmark's `%s` (%.1f s, %.0f kbit/s), sent by one looping `ffmpeg -re -stream_loop -1 -i input.flv -c copy -f flv rtmp://…/live/<key>` per room "+
		"(started 25 ms apart). onair runs with the shipped defaults, MongoDB (FerretDB) and S3 (MinIO) on the same machine; each room is created "+
		"through the API, and `PATCH /api/v1/rooms/{slug} {\"recording\": false}` switches its recording off. CPU and RSS are onair's own "+
		"(/proc/<pid>/stat and VmRSS, sampled every second).\n\n", r.Input.File, r.Input.Seconds, r.Input.BitrateKbps)
	oldkit.RunErrors(&b, r.Errors)
	off, okOff := findRecordLoad(r.Load, false)
	on, okOn := findRecordLoad(r.Load, true)

	b.WriteString("### Summary\n\n")
	var rows [][]string
	if okOff && okOn {
		rows = append(rows,
			[]string{fmt.Sprintf("CPU with recording on / off, %d streams", r.Streams),
				fmt.Sprintf("%s (%s → %s %% of a core)", oldkit.Fratio(oldkit.Ratio(on.CPUPercent, off.CPUPercent)), oldkit.Fnum(off.CPUPercent, 1), oldkit.Fnum(on.CPUPercent, 1)), "reported", "—"},
			[]string{"RSS (mean over the window) with recording on / off",
				fmt.Sprintf("%s (%s → %s MB: %+.2f MB per recording)", oldkit.Fratio(oldkit.Ratio(on.RSSMeanMB, off.RSSMeanMB)), oldkit.Fnum(off.RSSMeanMB, 1), oldkit.Fnum(on.RSSMeanMB, 1),
					(on.RSSMeanMB-off.RSSMeanMB)/float64(r.Streams)), "reported", "—"})
	}
	if o := r.Outage; o != nil {
		flat, rise, growth := outageFlat(o)
		rows = append(rows,
			[]string{fmt.Sprintf("onair RSS during a %.0f s S3 outage", o.DownS),
				fmt.Sprintf("%s → %s MB (min %s, max %s); first 10 s → last 10 s (medians) %s → %s MB, %+.1f MB, while the spool grew by %.1f MB on disk",
					oldkit.Fnum(o.RSSStartMB, 1), oldkit.Fnum(o.RSSEndMB, 1), oldkit.Fnum(o.RSSMinMB, 1), oldkit.Fnum(o.RSSMaxMB, 1),
					oldkit.Fnum(o.RSSEarlyMB, 1), oldkit.Fnum(o.RSSLateMB, 1), rise, growth),
				fmt.Sprintf("flat: the rise ≤ %.0f %% of the spool's growth", 100*outageFlatShare), oldkit.Verdict(flat, true)},
			[]string{"backlog uploaded after S3 came back", fmt.Sprintf("%s s", oldkit.Fnum(o.DrainS, 1)), "reported", "—"})
	}
	if c := r.Completion; c != nil {
		ok, worst := completionOK(c)
		rows = append(rows, []string{"recordings through the outage",
			fmt.Sprintf("%d/%d with a replay %s s after the publishers left; each lasts what was sent within %.1f s", c.Complete, c.Rooms, oldkit.Fnum(c.WaitS, 1), worst),
			fmt.Sprintf("all complete (within %.1f s)", recordedSlackS), oldkit.Verdict(ok, true)})
	}
	if p := r.Replay; p != nil {
		rows = append(rows, []string{fmt.Sprintf("publisher left → replay playlist 200 (%d runs)", len(p.RunsMS)),
			fmt.Sprintf("median %s ms, max %s ms", oldkit.Fnum(p.MedianMS, 0), oldkit.Fnum(p.MaxMS, 0)), "reported", "—"})
	}
	b.WriteString(oldkit.Table([]string{"measure", "figure", "target", "verdict"}, rows))

	if okOff || okOn {
		recordLoadTable(&b, r)
	}
	if r.Outage != nil {
		outageTable(&b, r.Outage, r.Streams)
	}
	if r.Completion != nil || r.Replay != nil {
		replayTable(&b, r)
	}
	return b.String()
}

func recordLoadTable(b *strings.Builder, r *recordResults) {
	b.WriteString("\n### Recording off and on\n\n")
	fmt.Fprintf(b, "Each on a fresh onair (the same FerretDB and MinIO; off first, then on): RSS 1 s after start (*idle*), then "+
		"%d publishers; window of %s s after a %s s warm-up. Go's heap at start is not returned to the system at once, so "+
		"the idle RSS can exceed the loaded mean: compare the means. A recording is the run's fMP4 log, which the live "+
		"playlists are served from too, uploaded chunk by chunk; *spool* is `onair_recording_spool_bytes` and "+
		"`onair_recording_parts_pending` (chunks of the logs not stored yet, the one in flight included) from /metrics at "+
		"the end of the window, and `onair_recordings_in_progress` must be one per stream with recording on.\n\n",
		r.Streams, oldkit.Fnum(firstLoad(r).WindowS, 0), oldkit.Fnum(firstLoad(r).WarmupS, 0))
	var rows [][]string
	for _, l := range r.Load {
		rows = append(rows, []string{map[bool]string{false: "off", true: "on"}[l.Recording],
			fmt.Sprintf("%d/%d", l.Live, l.Streams), oldkit.Fnum(l.CPUPercent, 1),
			fmt.Sprintf("%s → %s (max %s)", oldkit.Fnum(l.RSSIdleMB, 1), oldkit.Fnum(l.RSSMeanMB, 1), oldkit.Fnum(l.RSSMaxMB, 1)),
			fmt.Sprintf("%s MB, %.0f files", oldkit.Fnum(l.SpoolMB, 1), l.SpoolParts), oldkit.Fnum(l.MachineBusy, 0)})
	}
	b.WriteString(oldkit.Table([]string{"recording", "streams live", "CPU % of a core", "RSS idle → mean (MB)", "spool", "machine busy %"}, rows))
}

func firstLoad(r *recordResults) recordLoad {
	if len(r.Load) == 0 {
		return recordLoad{WindowS: math.NaN(), WarmupS: math.NaN()}
	}
	return r.Load[0]
}

func outageTable(b *strings.Builder, o *outageResult, streams int) {
	b.WriteString("\n### S3 outage\n\n")
	fmt.Fprintf(b, "Right after the recording-on window, with the same %d streams going on, MinIO is killed (SIGKILL to its "+
		"process group) and started again %.0f s later on the same port and data directory. onair's RSS and spool are "+
		"sampled every second. *Drained* is when no full chunk waited any more (chunk files ≤ recordings in progress), "+
		"counted from MinIO answering ready again. The recordings directory (`<data.dir>/recordings`, the spools) is "+
		"measured on disk at the kill and at the restart. GC makes single samples swing by 10 MB or more, so the trend is "+
		"read from the medians of the first and last 10 s; the 2 min DVR window, still filling during the outage, makes RSS "+
		"rise a little by itself.\n\n", streams, o.DownS)
	rows := [][]string{
		{"onair RSS (MB)", oldkit.Fnum(o.RSSStartMB, 1), oldkit.Fnum(o.RSSEndMB, 1), fmt.Sprintf("min %s, max %s; max while draining %s", oldkit.Fnum(o.RSSMinMB, 1), oldkit.Fnum(o.RSSMaxMB, 1), oldkit.Fnum(o.RSSDrainMaxMB, 1))},
		{"onair RSS, median of 10 s (MB)", oldkit.Fnum(o.RSSEarlyMB, 1), oldkit.Fnum(o.RSSLateMB, 1), "the first and the last 10 s of the outage"},
		{"spool, /metrics (MB)", oldkit.Fnum(o.SpoolStartMB, 1), oldkit.Fnum(o.SpoolEndMB, 1), ""},
		{"chunk files, /metrics", oldkit.Fnum(o.PartsStart, 0), oldkit.Fnum(o.PartsEnd, 0), ""},
		{"recordings directory on disk (MB)", oldkit.Fnum(o.DiskStartMB, 1), oldkit.Fnum(o.DiskEndMB, 1), ""},
		{"backlog drained after MinIO's return", "", "", oldkit.Fnum(o.DrainS, 1) + " s"},
		{"machine busy %", "", "", oldkit.Fnum(o.MachineBusy, 0)},
	}
	b.WriteString(oldkit.Table([]string{"", "at the kill", "at the restart", ""}, rows))
	b.WriteString("\nEvery 10 s (t from the kill):\n\n")
	var srows [][]string
	next := 0.0
	for i, s := range o.Samples {
		if s.AtS+0.5 >= next || i == len(o.Samples)-1 {
			srows = append(srows, []string{oldkit.Fnum(s.AtS, 0), s.Phase, oldkit.Fnum(s.RSSMB, 1), oldkit.Fnum(s.SpoolMB, 1), oldkit.Fnum(s.SpoolParts, 0)})
			next = math.Floor(s.AtS+0.5) + 10
		}
	}
	b.WriteString(oldkit.Table([]string{"t (s)", "S3", "RSS (MB)", "spool (MB)", "chunk files"}, srows))
}

func replayTable(b *strings.Builder, r *recordResults) {
	b.WriteString("\n### Publisher left → replay\n\n")
	if c := r.Completion; c != nil {
		fmt.Fprintf(b, "After the outage's backlog was uploaded, the %d publishers were stopped together (SIGTERM): %d/%d broadcasts "+
			"listed a replay whose playlist answered 200 within %s s. Sent (s): %s. Recorded (s): %s.\n\n",
			c.Rooms, c.Complete, c.Rooms, oldkit.Fnum(c.WaitS, 1), oldkit.RigJoin(c.PublishedS, 1), oldkit.RigJoin(c.RecordedS, 1))
	}
	if p := r.Replay; p != nil {
		fmt.Fprintf(b, "Then, on the same onair with nothing else live, one room %d times: `ffmpeg -re -t %s -i input.flv -c copy` publishes "+
			"and leaves by itself; from its exit, `GET /api/v1/rooms/{slug}/broadcasts` every 50 ms until the new broadcast lists a "+
			"`replay_url`, then that playlist until it answers 200.\n\n", len(p.RunsMS), oldkit.Fnum(p.PublishS, 0))
		b.WriteString(oldkit.Table([]string{"", "runs (ms)", "median (ms)", "max (ms)"}, [][]string{
			{"replay_url listed", oldkit.RigJoin(p.URLMS, 0), oldkit.Fnum(oldkit.Median(p.URLMS), 0), oldkit.Fnum(maxOf(p.URLMS), 0)},
			{"replay playlist 200", oldkit.RigJoin(p.RunsMS, 0), oldkit.Fnum(p.MedianMS, 0), oldkit.Fnum(p.MaxMS, 0)},
		}))
	}
}

// maxOf is the largest of xs, NaN for none.
func maxOf(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	m := xs[0]
	for _, x := range xs[1:] {
		m = max(m, x)
	}
	return m
}
